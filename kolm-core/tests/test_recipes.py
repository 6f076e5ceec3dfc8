"""A tier's recipes: the default and the alternatives a backend lists, chosen with `--recipe`, named
in the manifest and the lockfile, read back by `kolm verify`, and forecast with their own measured
drop (kolm-core's table backend: int4 is `I4` by default, `fine` (I4F) keeps K)."""

from __future__ import annotations

import json

import pytest
from kolm.api import Backend, TierRecipe
from kolm.forecast import forecast
from kolm.modelspec import resolve_model
from kolm_testing import failed, invoke, verify
from pydantic import ValidationError


def test_a_recipe_without_a_name_is_named_after_its_spelling():
    assert TierRecipe.model_validate("Q4_K_M").name == "Q4_K_M"
    assert TierRecipe(spelling="5-bit g32, embedding 8-bit").name == "5-bit-g32-embedding-8-bit"


def test_alternatives_need_a_tier_of_the_table_and_names_of_their_own():
    with pytest.raises(ValidationError, match="alternatives for int4, a tier `tiers` does not make"):
        Backend(name="b", description="-", tiers={"int8": "Q8"}, alternatives={"int4": ["Q4"]}, install="-")
    with pytest.raises(ValidationError, match="two int4 recipes share a name: Q4, Q4"):
        Backend(name="b", description="-", tiers={"int4": "Q4"}, alternatives={"int4": ["Q4"]}, install="-")


def test_the_forecast_names_the_recipe_and_takes_its_measured_drop(table, artifact):
    spec, box = resolve_model(str(artifact)), table.devices().find("ttb")
    default = forecast(table, spec, box, "int4")
    assert (default.recipe, default.spelling) == ("I4", "I4") and default.k_loss_method.startswith("typical delta")
    assert default.command == f"kolm export {artifact} --target test-table-box --quant int4"
    fine = forecast(table, spec, box, "int4", recipe_name="fine")
    assert (fine.recipe, fine.spelling) == ("fine", "I4F") and fine.command == default.command + " --recipe fine"
    assert fine.k_loss_points == 2.5  # measured on other models only: their mean, labelled so
    assert fine.k_loss_method == (
        "mean of the drops measured for this recipe on other models, a rise as 0: "
        "SmolLM2-135M-Instruct 1.5, other 3.5 (a test); tiny-llama not measured"
    )
    assert forecast(table, spec, box, "int4", recipe_name="I4").command == default.command


def test_a_model_the_default_recipe_refuses_takes_the_first_alternative_that_accepts_it(table, table_backend, artifact):
    spec, box = resolve_model(str(artifact)), table.devices().find("ttb")
    table_backend.refusal, table_backend.refused_recipe = "I4 cannot hold {arch}", "I4"
    planned = forecast(table, spec, box, "int4")
    assert (planned.recipe, planned.refusal) == ("fine", None)
    assert planned.command == f"kolm export {artifact} --target test-table-box --quant int4"  # export picks it too
    asked = forecast(table, spec, box, "int4", recipe_name="I4")
    assert asked.command is None and asked.refusal == "I4 cannot hold LlamaForCausalLM"
    table_backend.refused_recipe = None  # every recipe refused: the default's reason
    assert forecast(table, spec, box, "int4").refusal == "I4 cannot hold LlamaForCausalLM"


def test_an_export_without_recipe_records_the_one_the_model_took(table, table_backend, packed, tmp_path):
    table_backend.refusal, table_backend.refused_recipe = "I4 cannot hold {arch}", "I4"
    out = tmp_path / "auto"
    result = invoke("export", packed, "--target", "ttb", "--quant", "int4", "-o", out, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["manifest"]["recipe"] == "fine"
    refused = invoke("export", packed, "--target", "ttb", "--quant", "int4", "--recipe", "I4", "-o", tmp_path / "x")
    assert refused.exit_code != 0 and "I4 cannot hold" in refused.stderr and not (tmp_path / "x").exists()


def test_an_unknown_recipe_is_one_line_naming_the_tiers_recipes(table, artifact):
    result = invoke("export", artifact, "--target", "ttb", "--quant", "int4", "--recipe", "best", "--preview")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "kolm: error: table has no int4 recipe 'best'; its int4 recipes: I4 (I4), fine (I4F)"
    )


def test_pick_with_a_recipe_keeps_the_rows_whose_backend_lists_it(table, artifact):
    rows = json.loads(invoke("pick", artifact, "--recipe", "fine", "--json").stdout)
    assert {(r["backend"], r["tier"], r["recipe"]) for r in rows} == {("table", "int4", "fine")}
    missing = invoke("pick", artifact, "--recipe", "nope")
    assert missing.exit_code == 2 and "no backend of these devices has a recipe 'nope'" in missing.stderr


def test_an_export_names_its_recipe_and_verify_reads_it_back(table, packed, tmp_path):
    out = tmp_path / "fine"
    result = invoke("export", packed, "--target", "ttb", "--quant", "int4", "--recipe", "fine", "-o", out, "--json")
    assert result.exit_code == 0, result.output  # I4F keeps K: no --allow-drop needed
    record = json.loads(result.stdout)
    assert record["manifest"]["recipe"] == record["lockfile"]["recipe"] == "fine" and record["spelling"] == "I4F"
    code, evidence = verify(out, packed)
    assert code == 0 and evidence["checks"][3]["found"] == "int4, recipe fine (I4F)"
    again = invoke("export", packed, "--target", "ttb", "--quant", "int4", "-o", out, "--check", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["same"]  # re-made with the record's recipe


def test_a_manifest_naming_another_recipe_fails_check_4(exported, packed):
    folder = exported("int4")
    record_path, model_path = folder / "kolm-export.json", folder / "model.json"
    record, model = json.loads(record_path.read_text()), json.loads(model_path.read_text())
    record["manifest"]["recipe"] = "fine"
    model["manifest"] = json.dumps(record["manifest"])
    record_path.write_text(json.dumps(record))
    model_path.write_text(json.dumps(model))
    code, evidence = verify(folder, packed)
    assert code == 11 and 4 in failed(evidence)
    assert evidence["checks"][3]["expected"] == "int4, recipe fine (manifest)"


def test_a_drop_measured_on_this_model_beyond_the_gate_adds_allow_drop(table, artifact):
    from kolm.api import MeasuredDrop

    spec, box = resolve_model(str(artifact)), table.devices().find("ttb")
    steep = TierRecipe(spelling="I4", measured_drop=MeasuredDrop(points={"tiny-llama": 7.0}, source="a test"))
    table.backend("table").table.tiers["int4"] = steep
    planned = forecast(table, spec, box, "int4")
    assert planned.k_loss_points == 7.0 and planned.command.endswith(" --quant int4 --allow-drop")
    assert "the measured K drop exceeds the default --max-k-drop 5" in planned.notes
