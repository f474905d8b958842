from kerazoo.recipes.batchformer import RECIPE

RECIPE.main()
