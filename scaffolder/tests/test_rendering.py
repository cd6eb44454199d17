"""Behaviour and safety of the golden path rendering engine (no database needed)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from scaffolder.golden_path import (
    ANSWERS_FILENAME,
    GoldenPath,
    ParameterError,
    RenderLimitError,
    RenderLimits,
    TemplateError,
    TemplateSecurityError,
    UnsafePathError,
)
from scaffolder.manifest import load_golden_path, validate_parameters
from scaffolder.rendering import render_golden_path, write_rendered

FIXTURE = Path(__file__).parent / "fixtures" / "tiny-service"

BASE_MANIFEST: dict[str, Any] = {
    "name": "scratch",
    "title": "Scratch",
    "description": "Built by a test.",
    "version": "0.1.0",
    "owner": "platform",
    "parameters": {"type": "object", "properties": {}},
    "steps": [{"id": "render", "action": "render", "name": "Render"}],
}


def make_template(
    root: Path,
    template_files: dict[str, str | bytes],
    *,
    properties: dict[str, Any] | None = None,
    **manifest_overrides: Any,
) -> Path:
    """Write a throwaway golden path under ``root`` and return its folder."""
    manifest = {**BASE_MANIFEST, **manifest_overrides}
    if properties is not None:
        manifest["parameters"] = {"type": "object", "properties": properties}
    root.mkdir(parents=True, exist_ok=True)
    (root / "template.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    (root / "files").mkdir(exist_ok=True)
    for relative, content in template_files.items():
        target = root / "files" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    return root


@pytest.fixture
def tiny() -> GoldenPath:
    return load_golden_path(FIXTURE)


# ---------------------------------------------------------------------------- loading


def test_it_loads_the_manifest(tiny: GoldenPath) -> None:
    assert tiny.name == "tiny-service"
    assert tiny.version == "1.2.3"
    assert tiny.owner == "platform"
    assert tiny.tags == ["test", "fixture"]
    assert [step["action"] for step in tiny.steps] == ["render", "git_commit"]
    assert tiny.parameters_schema["required"] == ["name"]
    assert tiny.root == FIXTURE.resolve()


@pytest.mark.parametrize(
    ("overrides", "expected_field"),
    [
        ({"version": "1.0"}, "version"),
        ({"name": "Not A Label"}, "name"),
        ({"steps": [{"id": "go", "action": "run_shell", "name": "Nope"}]}, "steps[0].action"),
        ({"steps": [{"id": "go", "action": "render"}]}, "steps[0]"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_it_names_the_broken_manifest_field(tmp_path: Path, overrides: dict[str, Any], expected_field: str) -> None:
    folder = make_template(tmp_path / "t", {"a.txt": "a"}, **overrides)
    with pytest.raises(TemplateError, match=r"template\.yaml") as caught:
        load_golden_path(folder)
    assert expected_field in str(caught.value)


def test_it_names_a_missing_manifest_field(tmp_path: Path) -> None:
    folder = make_template(tmp_path / "t", {"a.txt": "a"})
    manifest = yaml.safe_load((folder / "template.yaml").read_text())
    del manifest["owner"]
    (folder / "template.yaml").write_text(yaml.safe_dump(manifest))
    with pytest.raises(TemplateError, match="owner"):
        load_golden_path(folder)


def test_it_refuses_a_parameters_schema_that_is_not_valid_json_schema(tmp_path: Path) -> None:
    folder = make_template(tmp_path / "t", {"a.txt": "a"}, properties={"name": {"type": "strng"}})
    with pytest.raises(TemplateError, match=r"parameters.*not a valid JSON Schema"):
        load_golden_path(folder)


def test_it_refuses_an_invalid_regex_in_the_parameters_schema(tmp_path: Path) -> None:
    folder = make_template(tmp_path / "t", {"a.txt": "a"}, properties={"name": {"type": "string", "pattern": "([a-"}})
    with pytest.raises(TemplateError, match="parameters"):
        load_golden_path(folder)


def test_it_refuses_a_default_that_breaks_its_own_schema(tmp_path: Path) -> None:
    properties = {"level": {"type": "integer", "minimum": 1, "maximum": 5, "default": 9}}
    folder = make_template(tmp_path / "t", {"a.txt": "a"}, properties=properties)
    with pytest.raises(TemplateError, match=r"parameters\.properties\.level\.default"):
        load_golden_path(folder)


def test_it_refuses_parameter_names_that_are_not_identifiers(tmp_path: Path) -> None:
    folder = make_template(tmp_path / "t", {"a.txt": "a"}, properties={"_secret": {"type": "string"}})
    with pytest.raises(TemplateError, match="_secret"):
        load_golden_path(folder)


def test_it_refuses_yaml_aliases_in_the_manifest(tmp_path: Path) -> None:
    folder = make_template(tmp_path / "t", {"a.txt": "a"})
    text = (folder / "template.yaml").read_text()
    (folder / "template.yaml").write_text(text + "tags: &t [a]\nextra: *t\n")
    with pytest.raises(TemplateError, match="aliases"):
        load_golden_path(folder)


def test_it_refuses_a_conditional_rule_that_matches_nothing(tmp_path: Path) -> None:
    folder = make_template(tmp_path / "t", {"a.txt": "a"}, files={"conditional": [{"path": "b.txt", "when": "true"}]})
    with pytest.raises(TemplateError, match=r"files\.conditional\[0\]\.path"):
        load_golden_path(folder)


def test_it_reports_jinja_syntax_errors_with_file_and_line(tmp_path: Path) -> None:
    folder = make_template(tmp_path / "t", {"src/broken.txt": "ok\n{% for x in %}\n"})
    with pytest.raises(TemplateError, match=r"files/src/broken\.txt: line 2"):
        load_golden_path(folder)


# ---------------------------------------------------------------------------- parameters


def test_it_applies_defaults_and_returns_clean_sorted_values(tiny: GoldenPath) -> None:
    cleaned = validate_parameters(tiny, {"name": "billing", "replicas": 3.0})
    assert cleaned == {
        "components": [],
        "flavour": "plain",
        "greeting": "hello",
        "name": "billing",
        "replicas": 3,
        "with_docs": False,
    }
    assert list(cleaned) == sorted(cleaned)
    assert isinstance(cleaned["replicas"], int)


def test_it_reports_every_invalid_field_at_once(tiny: GoldenPath) -> None:
    with pytest.raises(ParameterError) as caught:
        validate_parameters(
            tiny,
            {
                "name": "Not_A_Label",
                "replicas": 9,
                "with_docs": "yes",
                "flavour": "spicy",
                "components": ["ok", "Bad One"],
                "colour": "blue",
            },
        )
    errors = caught.value.errors
    assert set(errors) == {"name", "replicas", "with_docs", "flavour", "components", "colour"}
    assert "pattern" in errors["name"]
    assert errors["replicas"] == "Must be at most 5."
    assert errors["with_docs"] == "Must be true or false."
    assert "plain" in errors["flavour"]
    assert "[1]" in errors["components"]
    assert errors["colour"] == "Unknown parameter."


def test_it_reports_missing_required_fields(tiny: GoldenPath) -> None:
    with pytest.raises(ParameterError) as caught:
        validate_parameters(tiny, {})
    assert caught.value.errors == {"name": "This field is required."}


def test_it_refuses_a_string_over_64_kib(tiny: GoldenPath) -> None:
    with pytest.raises(ParameterError) as caught:
        validate_parameters(tiny, {"name": "ok", "greeting": "x" * (64 * 1024 + 1)})
    assert caught.value.errors == {"greeting": "Value too large."}


def test_it_refuses_a_10_mb_value_fast(tiny: GoldenPath) -> None:
    huge = "x" * (10 * 1024 * 1024)
    started = time.perf_counter()
    with pytest.raises(ParameterError) as caught:
        validate_parameters(tiny, {"name": huge})
    assert time.perf_counter() - started < 0.05
    assert caught.value.errors["name"] == "Value too large."


def test_it_refuses_a_payload_over_1_mib_in_total(tiny: GoldenPath) -> None:
    many_medium_strings = ["y" * 60_000 for _ in range(20)]  # each fine, together 1.2 MB
    with pytest.raises(ParameterError) as caught:
        validate_parameters(tiny, {"name": "ok", "components": many_medium_strings})
    assert caught.value.errors["components"] == "Value too large."
    assert "1 MiB" in caught.value.errors["__all__"]


def test_it_refuses_values_that_are_not_json_data(tiny: GoldenPath) -> None:
    with pytest.raises(ParameterError) as caught:
        validate_parameters(tiny, {"name": "ok", "greeting": b"bytes", "replicas": float("nan")})
    assert "JSON" in caught.value.errors["greeting"]
    assert "finite" in caught.value.errors["replicas"]


# ---------------------------------------------------------------------------- rendering


def test_it_renders_templated_file_and_folder_names(tiny: GoldenPath) -> None:
    files = render_golden_path(tiny, {"name": "billing"})
    assert files["billing/main.txt"] == b"service=billing\nflavour=plain\n"
    assert not any("{{" in path for path in files)


def test_it_renders_computed_values_into_names_and_content(tiny: GoldenPath) -> None:
    files = render_golden_path(tiny, {"name": "billing-api"})
    assert files["billing_api.py"] == b'SERVICE_NAME = "billing-api"\n'
    assert "module" not in yaml.safe_load(files[ANSWERS_FILENAME])["answers"]


def test_it_refuses_a_computed_value_that_shadows_a_parameter(tmp_path: Path) -> None:
    folder = make_template(
        tmp_path / "t", {"a.txt": "{{ name }}"}, properties={"name": {"type": "string"}}, computed={"name": "'x'"}
    )
    with pytest.raises(TemplateError, match=r"computed\.name"):
        load_golden_path(folder)


def test_it_refuses_a_computed_value_that_reaches_for_internals(tmp_path: Path) -> None:
    folder = make_template(tmp_path / "t", {"a.txt": "{{ leak }}"}, computed={"leak": "''.__class__"})
    with pytest.raises(TemplateSecurityError, match=r"computed\.leak"):
        load_golden_path(folder)


def test_it_leaves_out_conditional_files_whose_expression_is_false(tiny: GoldenPath) -> None:
    without_docs = render_golden_path(tiny, {"name": "billing"})
    with_docs = render_golden_path(tiny, {"name": "billing", "with_docs": True})
    assert "docs/guide.md" not in without_docs
    assert with_docs["docs/guide.md"] == b"Guide for billing.\n"
    assert not any(path.startswith("partials/") for path in with_docs)


def test_it_drops_a_file_whose_path_segment_renders_empty(tiny: GoldenPath) -> None:
    plain = render_golden_path(tiny, {"name": "billing"})
    fancy = render_golden_path(tiny, {"name": "billing", "flavour": "fancy"})
    assert not any(path.endswith("fancy.txt") for path in plain)
    assert fancy["extras/fancy.txt"] == b"Fancy billing\n"


def test_it_copies_binary_files_as_is(tiny: GoldenPath) -> None:
    files = render_golden_path(tiny, {"name": "billing"})
    assert files["logo.png"] == (FIXTURE / "files" / "logo.png").read_bytes()


def test_it_copies_verbatim_files_without_rendering(tiny: GoldenPath) -> None:
    files = render_golden_path(tiny, {"name": "billing"})
    assert b"${{ github.sha }}" in files[".github/workflows/ci.yml"]


def test_it_renders_includes_from_inside_the_template(tiny: GoldenPath) -> None:
    files = render_golden_path(tiny, {"name": "billing", "components": ["api", "worker"]})
    readme = files["README.md"].decode()
    assert readme.startswith("# billing\n\nhello, world. Running 1 replica.\n")
    assert "- api\n" in readme
    assert "- worker\n" in readme
    assert "Owned by the billing team.\n" in readme


def test_it_adds_a_sorted_deterministic_answers_file(tiny: GoldenPath) -> None:
    files = render_golden_path(tiny, {"with_docs": True, "name": "billing"})
    answers_text = files[ANSWERS_FILENAME].decode()
    answers = yaml.safe_load(answers_text)
    assert answers["template"] == "tiny-service"
    assert answers["version"] == "1.2.3"
    assert answers["answers"]["name"] == "billing"
    assert answers["answers"]["with_docs"] is True
    assert list(answers) == ["answers", "template", "version"]
    assert answers_text.index("components:") < answers_text.index("name:") < answers_text.index("with_docs:")


def test_it_returns_paths_sorted(tiny: GoldenPath) -> None:
    files = render_golden_path(tiny, {"name": "billing", "with_docs": True, "flavour": "fancy"})
    assert list(files) == sorted(files)


def test_it_renders_byte_identical_output_twice(tiny: GoldenPath) -> None:
    values = {"name": "billing", "components": ["b", "a"], "with_docs": True, "greeting": "héllo ✓"}
    first = render_golden_path(tiny, values)
    second = render_golden_path(load_golden_path(FIXTURE), dict(reversed(list(values.items()))))
    assert first == second


def test_it_reports_an_undefined_variable_naming_the_file(tmp_path: Path) -> None:
    folder = make_template(tmp_path / "t", {"conf/app.ini": "x={{ missing }}\n"})
    with pytest.raises(TemplateError, match=r"files/conf/app\.ini.*'missing' is undefined"):
        render_golden_path(load_golden_path(folder), {})


def test_it_refuses_two_files_that_render_to_the_same_path(tmp_path: Path) -> None:
    folder = make_template(
        tmp_path / "t", {"{{ name }}.txt": "a", "same.txt": "b"}, properties={"name": {"type": "string"}}
    )
    with pytest.raises(TemplateError, match=r"same\.txt"):
        render_golden_path(load_golden_path(folder), {"name": "same"})


def test_it_reserves_the_answers_file_name(tmp_path: Path) -> None:
    folder = make_template(tmp_path / "t", {ANSWERS_FILENAME: "forged: true\n"})
    with pytest.raises(TemplateError, match="reserved"):
        render_golden_path(load_golden_path(folder), {})


# ---------------------------------------------------------------------------- safety: values are data

INJECTION_ATTEMPTS = [
    "{{ 7*7 }}",
    "{{ ''.__class__.__mro__ }}",
    "{% for x in range(3) %}boom{% endfor %}",
]


@pytest.mark.parametrize("payload", INJECTION_ATTEMPTS)
def test_it_keeps_template_injection_in_values_literal(tiny: GoldenPath, payload: str) -> None:
    files = render_golden_path(tiny, {"name": "billing", "greeting": payload})
    assert f"{payload}, world.".encode() in files["README.md"]
    assert b"49" not in files["README.md"]
    assert b"boomboom" not in files["README.md"]
    assert yaml.safe_load(files[ANSWERS_FILENAME])["answers"]["greeting"] == payload


def test_it_keeps_template_injection_in_file_names_literal(tmp_path: Path) -> None:
    folder = make_template(tmp_path / "t", {"{{ label }}.txt": "x"}, properties={"label": {"type": "string"}})
    files = render_golden_path(load_golden_path(folder), {"label": "{{ 7*7 }}"})
    assert "{{ 7*7 }}.txt" in files


# ---------------------------------------------------------------------------- safety: sandbox


@pytest.mark.parametrize(
    "hostile_template",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ ''['__class__'] }}",
        "{{ self._TemplateReference__context }}",
        "{{ ''|attr('__class__') }}",
    ],
)
def test_it_refuses_templates_that_reach_for_python_internals(tmp_path: Path, hostile_template: str) -> None:
    folder = make_template(tmp_path / "t", {"src/evil.py": f"ok = 1\n{hostile_template}\n"})
    with pytest.raises(TemplateSecurityError, match=r"files/src/evil\.py: line 2"):
        load_golden_path(folder)


def test_it_refuses_templates_that_shadow_the_engine_guards(tmp_path: Path) -> None:
    folder = make_template(tmp_path / "t", {"a.txt": "{% set _scaffolder_guard_loop = 1 %}"})
    with pytest.raises(TemplateSecurityError, match="_scaffolder_guard_loop"):
        load_golden_path(folder)


def test_it_allows_an_underscore_loop_variable(tmp_path: Path) -> None:
    folder = make_template(tmp_path / "t", {"a.txt": "{% for _ in range(3) %}x{% endfor %}"})
    assert render_golden_path(load_golden_path(folder), {})["a.txt"] == b"xxx"


def test_it_refuses_internals_reached_at_render_time(tmp_path: Path) -> None:
    folder = make_template(
        tmp_path / "t", {"evil.txt": "{{ ''|attr(attribute) }}"}, properties={"attribute": {"type": "string"}}
    )
    golden_path = load_golden_path(folder)
    with pytest.raises(TemplateSecurityError, match=r"files/evil\.txt"):
        render_golden_path(golden_path, {"attribute": "__class__"})


def test_it_refuses_a_hostile_file_added_after_loading(tmp_path: Path) -> None:
    folder = make_template(tmp_path / "t", {"ok.txt": "fine"})
    golden_path = load_golden_path(folder)
    (folder / "files" / "late.txt").write_text("{{ cycler.__init__.__globals__ }}")
    with pytest.raises(TemplateSecurityError, match=r"files/late\.txt"):
        render_golden_path(golden_path, {})


def test_it_refuses_list_mutation_in_templates(tmp_path: Path) -> None:
    folder = make_template(tmp_path / "t", {"a.txt": "{% set items = [] %}{{ items.append(1) }}"})
    with pytest.raises(TemplateSecurityError, match=r"files/a\.txt"):
        render_golden_path(load_golden_path(folder), {})


# ---------------------------------------------------------------------------- safety: paths

UNSAFE_NAMES = ["../x", "/etc/x", "a/../../x", "a\x00b", "a\\b", ".git/hooks/post-checkout", "a//b"]


@pytest.mark.parametrize("unsafe_name", UNSAFE_NAMES)
def test_it_refuses_rendered_names_outside_the_output(tmp_path: Path, unsafe_name: str) -> None:
    folder = make_template(tmp_path / "t", {"{{ target }}": "x"}, properties={"target": {"type": "string"}})
    with pytest.raises(UnsafePathError, match=r"files/\{\{ target \}\}"):
        render_golden_path(load_golden_path(folder), {"target": unsafe_name})


def test_it_refuses_a_symlinked_file_inside_files(tmp_path: Path) -> None:
    folder = make_template(tmp_path / "t", {"ok.txt": "fine"})
    os.symlink("/etc/passwd", folder / "files" / "passwd")
    with pytest.raises(TemplateSecurityError, match=r"files/passwd.*symlink"):
        load_golden_path(folder)


def test_it_refuses_a_symlinked_folder_inside_files(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    folder = make_template(tmp_path / "t", {"ok.txt": "fine"})
    os.symlink(outside, folder / "files" / "linked")
    with pytest.raises(TemplateSecurityError, match=r"files/linked.*symlink"):
        load_golden_path(folder)


def test_it_refuses_a_files_folder_that_resolves_outside_the_template(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    (outside / "files").mkdir(parents=True)
    (outside / "files" / "a.txt").write_text("a")
    folder = make_template(tmp_path / "t", {})
    (folder / "files").rmdir()
    os.symlink(outside / "files", folder / "files")
    with pytest.raises(TemplateSecurityError, match="files/"):
        load_golden_path(folder)


def test_it_refuses_a_template_folder_reached_through_a_symlink_in_a_checkout(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    make_template(tmp_path / "elsewhere" / "agent", {"a.txt": "a"})
    os.symlink(tmp_path / "elsewhere", checkout / "templates")
    with pytest.raises(TemplateSecurityError, match="templates' is a symlink"):
        load_golden_path(checkout / "templates" / "agent", within=checkout)
    with pytest.raises(TemplateSecurityError, match="not inside"):
        load_golden_path(tmp_path / "elsewhere" / "agent", within=checkout)


def test_it_loads_a_template_folder_inside_a_checkout(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    make_template(checkout / "templates" / "agent", {"a.txt": "a"})
    assert load_golden_path(checkout / "templates" / "agent", within=checkout).name == "scratch"


def test_it_refuses_a_symlink_added_after_loading(tmp_path: Path) -> None:
    folder = make_template(tmp_path / "t", {"ok.txt": "fine"})
    golden_path = load_golden_path(folder)
    os.symlink("/etc/hostname", folder / "files" / "sneaky.txt")
    with pytest.raises(TemplateSecurityError, match="symlink"):
        render_golden_path(golden_path, {})


def test_it_refuses_a_symlinked_manifest(tmp_path: Path) -> None:
    folder = make_template(tmp_path / "t", {"ok.txt": "fine"})
    real_manifest = tmp_path / "manifest.yaml"
    (folder / "template.yaml").rename(real_manifest)
    os.symlink(real_manifest, folder / "template.yaml")
    with pytest.raises(TemplateSecurityError, match="symlink"):
        load_golden_path(folder)


# ---------------------------------------------------------------------------- safety: bombs


@pytest.mark.parametrize(
    "bomb",
    [
        "{{ 'x' * 100000000 }}",
        "{{ 10 ** 1000000 }}",
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "{% macro grow(s) %}{{ grow(s ~ s) }}{% endmacro %}{{ grow('x') }}",
        "{{ 'x'.ljust(1000000000) }}",
        "{{ '{:1000000000}'.format(1) }}",
        "{% set big = 'x' * 1000000 %}{{ big|replace('', big) }}",
        "{% for a in range(100000) %}{% for b in range(200) %}{{ 'y' * 100 }}{% endfor %}{% endfor %}",
    ],
)
def test_it_stops_template_bombs(tmp_path: Path, bomb: str) -> None:
    folder = make_template(tmp_path / "t", {"bomb.txt": bomb})
    started = time.perf_counter()
    with pytest.raises(RenderLimitError, match=r"files/bomb\.txt"):
        render_golden_path(load_golden_path(folder), {})
    assert time.perf_counter() - started < 10


def test_it_caps_the_number_of_rendered_files(tmp_path: Path) -> None:
    folder = make_template(tmp_path / "t", {f"f{index}.txt": "x" for index in range(5)})
    golden_path = load_golden_path(folder)
    assert len(render_golden_path(golden_path, {}, limits=RenderLimits(max_files=6))) == 6
    with pytest.raises(RenderLimitError, match="more than 5 files"):
        render_golden_path(golden_path, {}, limits=RenderLimits(max_files=5))


def test_it_caps_the_total_rendered_bytes(tmp_path: Path) -> None:
    folder = make_template(tmp_path / "t", {f"f{index}.txt": "{{ 'x' * 1000 }}" for index in range(5)})
    with pytest.raises(RenderLimitError, match="bytes"):
        render_golden_path(load_golden_path(folder), {}, limits=RenderLimits(max_total_bytes=3000))


# ---------------------------------------------------------------------------- writing


def test_it_writes_rendered_files_and_creates_folders(tiny: GoldenPath, tmp_path: Path) -> None:
    files = render_golden_path(tiny, {"name": "billing", "with_docs": True})
    output = tmp_path / "out" / "billing"
    write_rendered(files, output)
    written = {path.relative_to(output).as_posix(): path.read_bytes() for path in output.rglob("*") if path.is_file()}
    assert written == files


def test_it_replaces_existing_files_without_following_hard_links(tmp_path: Path) -> None:
    output = tmp_path / "out"
    output.mkdir()
    precious = tmp_path / "precious.txt"
    precious.write_text("do not touch")
    os.link(precious, output / "a.txt")
    write_rendered({"a.txt": b"new"}, output)
    assert (output / "a.txt").read_bytes() == b"new"
    assert precious.read_text() == "do not touch"


@pytest.mark.parametrize("unsafe_name", UNSAFE_NAMES)
def test_it_refuses_to_write_outside_the_output(tmp_path: Path, unsafe_name: str) -> None:
    output = tmp_path / "out"
    with pytest.raises(UnsafePathError):
        write_rendered({"ok.txt": b"fine", unsafe_name: b"x"}, output)
    assert not (tmp_path / "x").exists()
    assert not (output / "ok.txt").exists()  # refused before anything was written


def test_it_refuses_a_symlinked_output_folder(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "out")
    with pytest.raises(UnsafePathError, match="symlink"):
        write_rendered({"a.txt": b"x"}, tmp_path / "out")
    assert not (real / "a.txt").exists()


def test_it_refuses_a_symlinked_folder_inside_the_output(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    output = tmp_path / "out"
    output.mkdir()
    os.symlink(outside, output / "src")
    with pytest.raises(UnsafePathError, match="symlink"):
        write_rendered({"src/app.py": b"x"}, output)
    assert not (outside / "app.py").exists()


def test_it_refuses_any_existing_symlink_in_the_output_tree(tmp_path: Path) -> None:
    output = tmp_path / "out"
    (output / "deep").mkdir(parents=True)
    os.symlink("/etc/passwd", output / "deep" / "unrelated")
    with pytest.raises(UnsafePathError, match=r"deep/unrelated"):
        write_rendered({"a.txt": b"x"}, output)
    assert not (output / "a.txt").exists()


def test_it_refuses_a_file_that_would_also_be_a_folder(tmp_path: Path) -> None:
    with pytest.raises(UnsafePathError, match="both a file and a directory"):
        write_rendered({"a": b"x", "a/b.txt": b"y"}, tmp_path / "out")
