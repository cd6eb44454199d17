"""The Create pages: generated form, live validation per field, preview, run page, retry and download."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from approvals.models import ApprovalRequest
from scaffolder import services
from scaffolder.forms import ParametersForm
from scaffolder.models import ScaffoldRun
from scaffolder.tests.conftest import AGENT_VALUES

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager_celery() -> Iterator[None]:
    from portal.celery import app

    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous


@pytest.fixture
def client_for(world: dict[str, Any]) -> Callable[[Any], Client]:
    def make(user: Any) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def as_alice(world: dict[str, Any], client_for: Callable[[Any], Client]) -> Client:
    return client_for(world["alice"])


def form_data(values: dict[str, Any], **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {key: value for key, value in values.items() if not isinstance(value, bool)}
    data.update({key: "on" for key, value in values.items() if value is True})
    data.setdefault("publisher", "none")
    data.update(extra)
    return data


def assert_csp_safe(html: str) -> None:
    assert " style=" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assert "<style" not in html


def test_it_lists_golden_paths_and_my_runs(as_alice: Client, world: dict[str, Any]) -> None:
    run = services.run_start(
        actor=world["alice"], template=world["templates"]["python-agent"], values=AGENT_VALUES, enqueue=False
    )
    html = as_alice.get(reverse("scaffolder:index")).content.decode()
    assert "Python AI agent" in html
    assert "MCP tool server (Python)" in html
    assert f'href="/create/runs/{run.pk}/"' in html
    assert_csp_safe(html)


def test_it_generates_the_form_from_the_json_schema(as_alice: Client, make_team: Callable[..., Any]) -> None:
    make_team("not-mine")
    response = as_alice.get(reverse("scaffolder:template", args=["python-agent"]))
    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r'<input type="text" name="name"', html)
    assert re.search(r'<textarea name="description"', html)  # long text
    assert re.search(r'<select name="agent_type"[^>]*>.*<option value="sre">sre</option>', html, re.S)
    number = re.search(r'<input type="number" name="autonomy_level" value="2"[^>]*>', html)
    assert number is not None
    assert 'min="1"' in number.group(0)
    assert 'max="5"' in number.group(0)
    assert re.search(r'<input type="checkbox" name="human_approval"[^>]*checked', html)
    owner = re.search(r'<select name="owner".*?</select>', html, re.S)
    assert owner is not None
    assert 'value="sre-team"' in owner.group(0)
    assert "not-mine" not in owner.group(0)  # only teams alice maintains
    tools = re.search(r'<select name="tools"[^>]*multiple.*?</select>', html, re.S)
    assert tools is not None
    assert 'value="github"' in tools.group(0)
    assert 'value="pagerduty"' in tools.group(0)
    assert 'hx-post="/create/python-agent/validate/"' in html
    assert 'hx-vals="{&quot;_field&quot;: &quot;agent_type&quot;}"' in html
    assert 'id="errors-name"' in html
    assert_csp_safe(html)


def test_the_form_maps_every_schema_type(world: dict[str, Any]) -> None:
    schema = {
        "type": "object",
        "required": ["title"],
        "properties": {
            "title": {"type": "string", "maxLength": 40},
            "ratio": {"type": "number", "minimum": 0, "maximum": 1},
            "zones": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
            "labels": {"type": "array", "items": {"type": "string"}},
        },
    }
    form = ParametersForm(
        {"title": "x", "ratio": "0.5", "zones": ["b"], "labels": "one\n two \n\n", "publisher": "none"},
        schema=schema, owner_choices=[], tool_choices=[], publishers=["none"], check=lambda values, _: values,
    )  # fmt: skip
    assert form.is_valid(), form.errors
    assert form.values() == {"title": "x", "ratio": 0.5, "zones": ["b"], "labels": ["one", "two"]}
    assert form.fields["zones"].widget.allow_multiple_selected
    assert form.fields["ratio"].widget.attrs["min"] == 0
    assert form.fields["ratio"].widget.attrs["max"] == 1


def test_live_validation_answers_one_field_at_a_time(as_alice: Client) -> None:
    url = reverse("scaffolder:validate", args=["python-agent"])

    bad = as_alice.post(url, form_data({**AGENT_VALUES, "name": "Bad Name", "autonomy_level": 9}, _field="name"))
    assert bad.status_code == 200
    assert "Must match the pattern" in bad.content.decode()
    assert "at most 5" not in bad.content.decode()  # only the field asked about

    number = as_alice.post(url, form_data({**AGENT_VALUES, "autonomy_level": 9}, _field="autonomy_level"))
    assert "at most 5" in number.content.decode()

    good = as_alice.post(url, form_data(AGENT_VALUES, _field="name"))
    assert good.content.decode().strip() == ""

    taken = as_alice.post(url, form_data({**AGENT_VALUES, "name": "github"}, _field="name"))
    assert "already has an agent or tool called" in taken.content.decode()

    assert as_alice.post(url, form_data(AGENT_VALUES, _field="nope")).status_code == 400


def test_preview_shows_the_tree_and_contents_and_writes_nothing(as_alice: Client) -> None:
    response = as_alice.post(
        reverse("scaffolder:template", args=["python-agent"]), form_data(AGENT_VALUES, _action="preview")
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "26 files" in html
    assert 'data-path="incident_helper/mcp_tools.py"' in html
    assert "<summary>incident_helper/</summary>" in html
    assert "consumesApis:" in html  # file contents are there to read
    assert 'type="hidden" name="name" value="incident-helper"' in html
    assert 'name="_action" value="run"' in html
    assert not ScaffoldRun.objects.exists()
    assert_csp_safe(html)


def test_invalid_values_come_back_on_the_form_field_by_field(as_alice: Client) -> None:
    response = as_alice.post(
        reverse("scaffolder:template", args=["python-agent"]),
        form_data({**AGENT_VALUES, "name": "", "agent_type": "wizard"}, _action="preview"),
    )
    html = response.content.decode()
    assert "Please correct the fields marked below." in html
    errors = re.search(r'id="errors-name".*?</div>', html, re.S)
    assert errors is not None
    assert "This field is required." in errors.group(0)
    assert "Select a valid choice" in html or "Must be one of" in html


def test_run_starts_executes_and_links_to_everything(
    as_alice: Client, world: dict[str, Any], make_bare: Any, eager_celery: None, django_capture_on_commit_callbacks: Any
) -> None:
    make_bare("incident-helper")
    with django_capture_on_commit_callbacks(execute=True):
        response = as_alice.post(
            reverse("scaffolder:template", args=["python-agent"]),
            form_data(AGENT_VALUES, _action="run", publisher="git"),
        )
    run = ScaffoldRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("scaffolder:run", args=[run.pk])
    assert run.state == ScaffoldRun.State.SUCCEEDED, run.error

    html = as_alice.get(response["Location"]).content.decode()
    assert 'data-testid="run-state">Succeeded' in html
    assert 'href="/catalog/agents/incident-helper/"' in html or "catalog-link" in html
    assert reverse("scaffolder:run-download", args=[run.pk]) in html
    for request_id in run.approval_request_ids:
        assert reverse("approvals:request", args=[request_id]) in html
    assert 'hx-trigger="every 1s"' not in html  # finished: polling stops
    assert_csp_safe(html)


def test_the_run_page_polls_while_the_run_is_active(as_alice: Client, world: dict[str, Any]) -> None:
    run = services.run_start(
        actor=world["alice"], template=world["templates"]["python-agent"], values=AGENT_VALUES, enqueue=False
    )
    url = reverse("scaffolder:run", args=[run.pk])
    page = as_alice.get(url).content.decode()
    assert f'hx-get="{url}" hx-trigger="every 1s" hx-swap="outerHTML"' in page
    partial = as_alice.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<div id="run-status"')
    assert "<html" not in partial

    services.run_execute(run_id=run.pk)
    checking = as_alice.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-state="succeeded"' in checking
    assert "every 1s" in checking  # the onboarding checks (no worker here) are still running
    assert 'data-testid="approval-request" data-state="checking"' in checking

    ApprovalRequest.objects.filter(pk__in=ScaffoldRun.objects.get(pk=run.pk).approval_request_ids).update(
        state=ApprovalRequest.State.CHANGES_REQUESTED
    )
    finished = as_alice.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "every 1s" not in finished


def test_the_run_page_shows_the_onboarding_request_and_its_failed_checks(
    as_alice: Client, world: dict[str, Any]
) -> None:
    from approvals.models import CheckRun

    run = services.run_start(
        actor=world["alice"], template=world["templates"]["python-agent"], values=AGENT_VALUES, enqueue=False
    )
    services.run_execute(run_id=run.pk)
    run.refresh_from_db()
    onboarding = ApprovalRequest.objects.get(pk=run.approval_request_ids[0])
    ApprovalRequest.objects.filter(pk=onboarding.pk).update(state=ApprovalRequest.State.CHANGES_REQUESTED)
    CheckRun.objects.filter(request=onboarding).delete()
    CheckRun.objects.create(request=onboarding, round=onboarding.round, name="owner_has_maintainer", status="passed")
    CheckRun.objects.create(
        request=onboarding,
        round=onboarding.round,
        name="descriptor_complete",
        status="failed",
        summary="incident-helper: missing a data class.",
    )

    page = as_alice.get(reverse("scaffolder:run", args=[run.pk])).content.decode()

    assert f"#{onboarding.pk}</a> agent onboarding" in page.lower()
    assert 'data-testid="request-state">changes requested' in page.lower()
    assert "<strong>descriptor_complete</strong>: incident-helper: missing a data class." in page
    assert "owner_has_maintainer" not in page.split('data-testid="failed-checks"')[1].split("</ul>")[0]


def test_a_failed_run_offers_a_retry(
    as_alice: Client, world: dict[str, Any], make_bare: Any, django_capture_on_commit_callbacks: Any
) -> None:
    run = services.run_start(
        actor=world["alice"], template=world["templates"]["python-agent"], values=AGENT_VALUES, publisher="git",
        enqueue=False,
    )  # fmt: skip
    services.run_execute(run_id=run.pk)
    page = as_alice.get(reverse("scaffolder:run", args=[run.pk])).content.decode()
    assert "Retry from the failed step" in page
    assert "Publish the repository failed" in page

    make_bare("incident-helper")
    with django_capture_on_commit_callbacks() as callbacks:
        response = as_alice.post(reverse("scaffolder:run-retry", args=[run.pk]))
    assert response.status_code == 302
    assert len(callbacks) == 1
    run.refresh_from_db()
    assert run.state == ScaffoldRun.State.QUEUED


def test_the_zip_download_is_only_for_the_requester(
    as_alice: Client, world: dict[str, Any], client_for: Callable[[Any], Client], make_user: Callable[..., Any]
) -> None:
    run = services.run_start(
        actor=world["alice"], template=world["templates"]["python-agent"], values=AGENT_VALUES, enqueue=False
    )
    assert as_alice.get(reverse("scaffolder:run-download", args=[run.pk])).status_code == 404  # not committed yet
    services.run_execute(run_id=run.pk)

    response = as_alice.get(reverse("scaffolder:run-download", args=[run.pk]))
    assert response["Content-Type"] == "application/zip"
    assert 'filename="incident-helper.zip"' in response["Content-Disposition"]
    assert "incident-helper/pyproject.toml" in zipfile.ZipFile(io.BytesIO(response.content)).namelist()

    stranger = client_for(make_user("mallory"))
    assert stranger.get(reverse("scaffolder:run-download", args=[run.pk])).status_code == 404
    assert stranger.get(reverse("scaffolder:run", args=[run.pk])).status_code == 404
    assert stranger.post(reverse("scaffolder:run-retry", args=[run.pk])).status_code == 404


def test_the_dashboard_shows_my_runs(as_alice: Client, world: dict[str, Any]) -> None:
    run = services.run_start(
        actor=world["alice"], template=world["templates"]["python-agent"], values=AGENT_VALUES, enqueue=False
    )
    html = as_alice.get(reverse("portal:dashboard")).content.decode()
    assert "Golden paths" in html
    assert f"Run #{run.pk}: incident-helper" in html


def test_pages_need_a_login(world: dict[str, Any]) -> None:
    response = Client().get(reverse("scaffolder:template", args=["python-agent"]))
    assert response.status_code == 302
    assert "/login/" in response["Location"]
