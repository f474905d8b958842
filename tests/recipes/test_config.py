import dataclasses
import re

import pytest

from kerazoo.recipes.config import ConfigError, describe, option, resolve


@dataclasses.dataclass
class Toy:
    epochs: int = option(3, "training epochs")
    rate: float = option(0.1, "learning rate")
    name: str = option("digits", "dataset")
    flag: bool = option(False, "a switch")
    sizes: list[int] = option([1, 2], "a list")


def test_defaults_then_file_then_set(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('epochs = 7\nname = "cifar100"\nsizes = [4, 5]\n')
    config = resolve(Toy, [path], ["epochs=9", "flag=true", "rate=1"])
    assert config == Toy(epochs=9, rate=1.0, name="cifar100", flag=True, sizes=[4, 5])
    assert resolve(Toy, sets=["sizes=[3]"]).sizes == [3]


def test_unknown_key_names_the_valid_ones():
    with pytest.raises(ConfigError) as error:
        resolve(Toy, sets=["nonsense=1"])
    assert "nonsense" in str(error.value) and "epochs, rate, name, flag, sizes" in str(error.value)


@pytest.mark.parametrize("item", ["epochs=2.5", "flag=maybe", "rate=fast", "epochs"])
def test_bad_values_are_refused(item):
    with pytest.raises(ConfigError):
        resolve(Toy, sets=[item])


def test_describe_lists_every_field_with_its_meaning():
    text = describe(Toy)
    for f in dataclasses.fields(Toy):
        assert f.name in text and f.metadata["help"] in text


@pytest.mark.parametrize("recipe", ["baseline", "lucir"])
def test_the_digits_config_files_spell_out_the_defaults(recipe, config_class):
    from pathlib import Path

    path = Path(__file__).parents[2] / "recipes" / f"digits_{recipe}.toml"
    assert resolve(config_class(recipe), [path]) == config_class(recipe)()


@dataclasses.dataclass
class Bounded:
    epochs: int = option(3, "training epochs", min=1)
    rate: float = option(0.1, "learning rate", min=0.0, max=1.0)
    mode: str = option("a", "a mode", choices=["a", "b"])
    methods: list[str] = option(["a"], "methods", choices=["a", "b", "c"])
    order_seed: int | None = option(None, "optional seed", min=0)

    def validate(self):
        if self.mode == "b" and self.epochs < 2:
            raise ConfigError("mode 'b' needs epochs >= 2")


@pytest.mark.parametrize(
    "item, message",
    [
        ("epochs=0", "'epochs' must be >= 1, got 0"),
        ("rate=1.5", "'rate' must be >= 0.0 and <= 1.0, got 1.5"),
        ("rate=inf", "'rate' must be a finite number"),
        ("mode=z", "'mode' got 'z'; choose from a, b"),
        ("methods=a,z", "'methods' got 'z'; choose from a, b, c"),
        ("order_seed=-1", "'order_seed' must be >= 0"),
        ("order_seed=x", "expects int or none"),
    ],
)
def test_bounds_and_choices_name_what_is_allowed(item, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        resolve(Bounded, sets=[item])


def test_lists_optional_values_and_cross_field_checks():
    assert resolve(Bounded, sets=["methods=a,c"]).methods == ["a", "c"]
    assert resolve(Bounded, sets=["methods=b"]).methods == ["b"]
    assert resolve(Bounded, sets=['methods=["b", "c"]']).methods == ["b", "c"]
    assert resolve(Bounded, sets=["methods=[b, c]"]).methods == ["b", "c"]  # a shell's quotes gone
    assert resolve(Bounded).order_seed is None
    assert resolve(Bounded, sets=["order_seed=1993"]).order_seed == 1993
    assert resolve(Bounded, sets=["order_seed=1993", "order_seed=none"]).order_seed is None
    with pytest.raises(ConfigError, match="mode 'b' needs epochs >= 2"):
        resolve(Bounded, sets=["mode=b", "epochs=1"])
    assert "[one of a, b]" in describe(Bounded) and "[>= 1]" in describe(Bounded)


def test_a_shipped_config_named_from_elsewhere_points_to_the_installed_one(tmp_path, monkeypatch):
    from kerazoo.recipes.baseline import BaselineConfig
    from kerazoo.zoo import installed_root

    monkeypatch.chdir(tmp_path)  # README's `--config recipes/...` outside a clone's root
    shipped = installed_root() / "recipes" / "digits_baseline.toml"
    with pytest.raises(ConfigError, match=f"relative to {tmp_path}\\); kerazoo's own is {shipped}"):
        resolve(BaselineConfig, ["recipes/digits_baseline.toml"])
    with pytest.raises(ConfigError, match=r"Config file not found: recipes/mine.toml$"):
        resolve(BaselineConfig, ["recipes/mine.toml"])
