"""Pick a golden path, fill the generated form (with live validation), preview, run, and follow the links to the
new catalog entry. Celery runs eagerly in the live server's thread; the repository is a real bare git repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from conftest import DEMO_PASSWORD


@pytest.fixture
def scaffolding(make_user: Any, make_team: Any, settings: Any, tmp_path: Path) -> Path:
    from catalog import services as catalog
    from scaffolder.registering import templates_register_builtin

    remotes = tmp_path / "remotes"
    remotes.mkdir()
    settings.SCAFFOLDER_WORK_DIR = str(tmp_path / "work")
    settings.SCAFFOLDER_GIT_REMOTE_BASE = str(remotes)
    settings.SCAFFOLDER_GITHUB_TOKEN = ""
    settings.SCAFFOLDER_GITLAB_TOKEN = ""
    alice = make_user("alice", first_name="Alice", last_name="Liddell")
    make_team("sre-team", maintainers=[alice])
    for name in ("github", "pagerduty"):
        catalog.tool_create(actor=alice, data={"name": name, "owner": "sre-team", "kind": "cli", "description": "x"})
    templates_register_builtin()
    subprocess.run(["git", "init", "--bare", "--quiet", str(remotes / "journey-agent.git")], check=True)
    return remotes / "journey-agent.git"


def test_it_scaffolds_an_agent_from_the_form_to_the_catalog(
    page: Page, live_server: Any, login: Any, scaffolding: Path, eager_celery: None
) -> None:
    login(page, "alice", DEMO_PASSWORD)
    page.goto(f"{live_server.url}/create/")
    page.get_by_test_id("template-python-agent").get_by_role("link", name="Use this golden path").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Python AI agent")

    # Live validation, field by field, while typing.
    name = page.get_by_label("Name", exact=True)
    name.fill("Bad Name")
    name.press("Tab")
    expect(page.locator("#errors-name")).to_contain_text("Must match the pattern")
    name.fill("journey-agent")
    name.press("Tab")
    expect(page.locator("#errors-name")).to_be_empty()

    page.get_by_label("Description").fill("Answers {{ 7*7 }} questions about incidents.")
    page.get_by_label("Owner").select_option("sre-team")
    page.get_by_label("Agent type").select_option("sre")
    page.get_by_label("Autonomy level").fill("9")
    page.get_by_label("Autonomy level").press("Tab")
    expect(page.locator("#errors-autonomy_level")).to_contain_text("Must be at most 5.")
    page.get_by_label("Autonomy level").fill("3")
    page.get_by_label("Tools").select_option(["github"])
    page.get_by_label("Publish to").select_option("git")

    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Preview: journey-agent")
    tree = page.get_by_test_id("preview-tree")
    descriptor = tree.locator('details[data-path="catalog-info.yaml"]')
    descriptor.locator("summary").click()
    expect(descriptor.locator("pre")).to_contain_text("name: journey-agent")
    expect(descriptor.locator("pre")).to_contain_text("- api:github")
    readme = tree.locator('details[data-path="README.md"]')
    readme.locator("summary").click()
    expect(readme.locator("pre")).to_contain_text("{{ 7*7 }}")  # values come out literally

    page.get_by_role("button", name="Run", exact=True).click()
    expect(page).to_have_url(re.compile(r"/create/runs/\d+/$"))
    expect(page.get_by_test_id("run-state")).to_have_text("Succeeded", timeout=30_000)
    expect(page.get_by_test_id("repository")).to_contain_text(str(scaffolding))
    expect(page.get_by_test_id("download")).to_have_text("journey-agent.zip")

    page.get_by_test_id("catalog-link").click()
    expect(page).to_have_url(re.compile(r"/catalog/agents/journey-agent/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("journey-agent")
