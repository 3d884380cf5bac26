"""TrainConfig: the field descriptions, resolve(), the split sizes."""

from __future__ import annotations

import dataclasses

import pytest

from synthgrad_core import ConfigError, TrainConfig, Trainer
from synthgrad_core.config import (
    FIELD_SPECS,
    ResolvedConfig,
    config_fields,
    planned_steps,
    split_sizes,
)


def test_every_field_has_one_description_with_a_plain_label() -> None:
    assert list(FIELD_SPECS) == [f.name for f in config_fields()]
    for name, spec in FIELD_SPECS.items():
        assert spec.label and spec.label[0].isupper() and "_" not in spec.label, name
        assert spec.kind in ("int", "float", "choice", "widths", "path"), name
        assert (spec.kind == "choice") == (spec.choices is not None), name
    main = [spec.label for spec in FIELD_SPECS.values() if not spec.advanced]
    for label in ("Dataset", "Learning rule", "Hidden layers", "Activation", "Epochs"):
        assert label in main


@pytest.mark.parametrize("dataset", ["addition", "digits"])
def test_resolve_leaves_no_field_unset(dataset: str) -> None:
    cfg = TrainConfig(dataset=dataset).resolve()
    assert isinstance(cfg, ResolvedConfig)
    unset = [f.name for f in dataclasses.fields(cfg) if getattr(cfg, f.name) is None]
    assert unset == ["data_path"]


def test_a_resolved_config_cannot_be_made_invalid() -> None:
    cfg = TrainConfig(dataset="digits").resolve()
    assert cfg.resolve() is cfg  # resolved once, where it enters
    with pytest.raises(ConfigError, match="epochs: must be >= 1"):
        dataclasses.replace(cfg, epochs=0)
    with pytest.raises(ConfigError, match="workers: must be at most 3"):
        dataclasses.replace(cfg, execution="pipelined", workers=4)


def test_a_stored_config_loads_even_if_todays_bounds_refuse_it() -> None:
    stored = {**TrainConfig(dataset="digits").resolve().as_dict(), "epochs": 0, "gone": 1}
    cfg = ResolvedConfig.from_stored(stored)
    assert cfg.epochs == 0 and cfg.hidden == (128, 64)
    refused_now = {**stored, "epochs": 3, "batch_norm": "on", "batch_size": 1}  # a newer rule
    assert ResolvedConfig.from_stored(refused_now).batch_size == 1
    fine = ResolvedConfig.from_stored(TrainConfig(dataset="digits", epochs=3).resolve().as_dict())
    assert fine == TrainConfig(dataset="digits", epochs=3).resolve()


def test_a_non_number_in_a_number_field_names_the_field() -> None:
    with pytest.raises(ConfigError, match="learning_rate: must be a number"):
        TrainConfig(learning_rate="fast").resolve()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "values", [{"dataset": "addition", "examples": 333}, {"dataset": "digits", "examples": 901}]
)
def test_split_sizes_match_the_dataset_the_trainer_builds(values: dict[str, object]) -> None:
    cfg = TrainConfig(**values, epochs=2, test_fraction=0.3).resolve()  # type: ignore[arg-type]
    trainer = Trainer(cfg)
    assert split_sizes(cfg) == (len(trainer.data.x_train), len(trainer.data.x_test))
    assert planned_steps(cfg) == trainer.total_steps


def test_mnist_split_follows_its_standard_files() -> None:
    cfg = TrainConfig(dataset="mnist", data_path="/nowhere", examples=7000).resolve()
    assert split_sizes(cfg) == (6000, 1000)


@pytest.mark.parametrize("values", [{"dataset": "addition", "bits": 5}, {"dataset": "digits"}])
def test_io_sizes_match_the_datasets(values: dict[str, object]) -> None:
    from synthgrad_core.config import io_sizes

    cfg = TrainConfig(**values, examples=100).resolve()  # type: ignore[arg-type]
    data = Trainer(cfg).data
    assert io_sizes(cfg) == (data.n_inputs, data.n_outputs)


@pytest.mark.parametrize(
    ("given", "stored"),
    [((), ()), ((0,), ()), (0, ()), (64, (64,)), ([1024, 1024], (1024, 1024))],
)
def test_module_widths_are_a_list_and_zero_is_linear(
    given: object, stored: tuple[int, ...]
) -> None:
    cfg = TrainConfig.from_dict({"dataset": "digits", "method": "dni", "sg_hidden": given})
    assert cfg.resolve().sg_hidden == stored
    assert (
        ResolvedConfig.from_stored({**cfg.resolve().as_dict(), "sg_hidden": given}).sg_hidden
        == stored
    )


def test_module_widths_out_of_bounds_name_the_field() -> None:
    for bad in ((0, 5), (5000,), tuple([8] * 9)):
        with pytest.raises(ConfigError) as raised:
            TrainConfig(dataset="digits", sg_hidden=bad).resolve()
        assert raised.value.field == "sg_hidden"


def test_the_field_lists_are_derived_from_the_field_rules() -> None:
    from synthgrad_core.config import (
        BRANCHABLE_FIELDS,
        FORK_FORM_FIELDS,
        LIVE_FIELDS,
        WIDTH_FIELDS,
        Method,
    )
    from synthgrad_core.state import CHANGEABLE
    from synthgrad_core.trainer import LIVE_KNOBS

    assert LIVE_KNOBS == LIVE_FIELDS and CHANGEABLE == BRANCHABLE_FIELDS
    assert set(LIVE_FIELDS) == {
        "learning_rate",
        "sg_learning_rate",
        "update_probability",
        "sg_scale",
    }
    assert set(LIVE_FIELDS) <= set(BRANCHABLE_FIELDS) and set(FORK_FORM_FIELDS) <= set(
        BRANCHABLE_FIELDS
    )
    assert WIDTH_FIELDS == ("hidden", "sg_hidden")
    for shaping in ("dataset", "hidden", "activation", "seed", "sg_hidden", "batch_size"):
        assert shaping not in BRANCHABLE_FIELDS
    assert [m for m in Method if m.uses_modules] == ["dni", "cdni"]
    cfg = TrainConfig(dataset="digits", method=Method.CDNI).resolve()
    assert cfg.method == "cdni" and type(cfg.method) is str and cfg.uses_modules


def test_whole_floats_are_ints_and_ints_in_float_fields_are_floats() -> None:
    cfg = TrainConfig.from_dict({"dataset": "digits", "epochs": 2.0, "learning_rate": 1}).resolve()
    assert cfg.epochs == 2 and type(cfg.epochs) is int
    assert cfg.learning_rate == 1.0 and type(cfg.learning_rate) is float
