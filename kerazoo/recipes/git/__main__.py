from kerazoo.recipes.git import RECIPE

RECIPE.main()
