from kerazoo.recipes.bnm import RECIPE

RECIPE.main()
