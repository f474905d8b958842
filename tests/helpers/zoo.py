"""The shipped digits_baseline in every zoo format, and images it takes.

A test module takes the `loaded` fixture by importing its function (named
`fixture_loaded` so that a test's argument does not shadow an import):

```python
from helpers.zoo import GOOD, fixture_loaded  # noqa: F401
```
"""

import numpy as np
import pytest

from kerazoo import zoo

# Two images digits_baseline takes: float32 (N, 8, 8, 1) in [0, 1].
GOOD = np.full((2, 8, 8, 1), 0.5, "float32")


@pytest.fixture(scope="module", params=zoo.FORMATS, name="loaded")
def fixture_loaded(request):
    """(format, digits_baseline loaded in that format)."""
    return request.param, zoo.load("digits_baseline", request.param)
