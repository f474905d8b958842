import dataclasses

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
