from kerazoo.recipes.lucir import RECIPE

RECIPE.main()
