from kerazoo.recipes.adco import RECIPE

RECIPE.main()
