from kerazoo.recipes.baseline import RECIPE

RECIPE.main()
