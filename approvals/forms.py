"""Forms parse what people type into the plain arguments of `approvals.services`; the services validate the rules
(who may decide, which comment is required) and the forms put their errors back on the right field."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django import forms

from approvals.models import ApprovalRequest, Decision
from approvals.notifications import EVENT_TITLES
from catalog.models import RiskTier

ONBOARDING_KINDS = [
    (ApprovalRequest.Kind.AGENT_ONBOARDING.value, ApprovalRequest.Kind.AGENT_ONBOARDING.label),
    (ApprovalRequest.Kind.TOOL_ONBOARDING.value, ApprovalRequest.Kind.TOOL_ONBOARDING.label),
]
COMMENT_HELP = "Required to reject or to request changes: the requester reads it."


class ServiceErrorsForm(forms.Form):
    """Puts an ApprovalError's {field: [messages]} on the form's fields; unknown keys become non-field errors."""

    def add_service_errors(self, errors: Mapping[str, Iterable[str]]) -> None:
        for field, messages in errors.items():
            for message in messages:
                if field in self.fields:
                    self.add_error(field, f"{self.fields[field].label or field.capitalize()} {message}")
                else:
                    self.add_error(None, f"{field.replace('_', ' ').capitalize()}: {message}")


class QueueFilterForm(forms.Form):
    """The reviewer queue's filters; the URL holds them, so a filtered queue can be bookmarked and shared."""

    tier = forms.ChoiceField(required=False, choices=[("", "Any tier"), *RiskTier.choices])
    kind = forms.ChoiceField(required=False, choices=[("", "Any kind"), *ApprovalRequest.Kind.choices])
    team = forms.ChoiceField(required=False, label="Owning team")

    def __init__(self, *args: Any, teams: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        team_field: Any = self.fields["team"]
        team_field.choices = [("", "Any team"), *((name, name) for name in teams)]

    def filters(self) -> dict[str, str]:
        """The valid filters; an unknown value (an old bookmark) is dropped rather than emptying the queue."""
        self.is_valid()
        return {name: self.cleaned_data.get(name, "") for name in ("tier", "kind", "team")}


class DecisionForm(ServiceErrorsForm):
    outcome = forms.ChoiceField(choices=Decision.Outcome.choices)
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text=COMMENT_HELP)
    # The stage the reviewer saw: a decision on a page that went stale meanwhile is refused, not misapplied.
    stage_index = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    # The facts the reviewer saw: an approval is refused when the subject's facts changed since.
    facts_fingerprint = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    # What the request is about ("tool:3", the request's subject_key): the decision locks it without reading it.
    subject_ref = forms.CharField(required=False, max_length=40, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("outcome") == Decision.Outcome.APPROVE and not cleaned.get("facts_fingerprint"):
            self.add_error(
                None, "This page did not say which facts you reviewed (facts fingerprint missing); reload it."
            )
        return cleaned


class ResubmitForm(forms.Form):
    justification = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What you changed. Leave empty to keep the current justification.",
    )
    attest = forms.BooleanField(required=False, label="I attest this descriptor is accurate")


class SubmitForm(forms.Form):
    """Submit an agent or a tool for onboarding, from its catalog page."""

    kind = forms.ChoiceField(choices=ONBOARDING_KINDS, widget=forms.HiddenInput)
    name = forms.CharField(max_length=200, widget=forms.HiddenInput)
    justification = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional: why it is needed and what it will be used for.",
    )
    attest = forms.BooleanField(
        required=False,
        label="I attest this descriptor is accurate",
        help_text="Low-tier requests are approved automatically after the checks when the owner attests.",
    )


class GrantRequestForm(forms.Form):
    """Ask for an agent to use a tool in one environment, from the agent's page."""

    agent = forms.CharField(max_length=200, widget=forms.HiddenInput)
    tool = forms.CharField(max_length=200, label="Tool name", help_text="The tool's catalog name, e.g. github.")
    environment = forms.CharField(max_length=63, initial="production")
    justification = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    attest = forms.BooleanField(required=False, label="I attest this request is accurate")


class UserPreferenceForm(ServiceErrorsForm):
    email_enabled = forms.BooleanField(required=False, label="Send me e-mail about approvals")
    muted_events = forms.MultipleChoiceField(
        required=False,
        choices=list(EVENT_TITLES.items()),
        widget=forms.CheckboxSelectMultiple,
        label="Mute these events",
        help_text="You get no e-mail for muted events; the request pages still list them.",
    )


class TeamWebhookForm(ServiceErrorsForm):
    url = forms.CharField(
        required=False,
        max_length=500,
        label="Chat webhook URL",
        help_text="A Slack-compatible incoming webhook (https). Leave empty for no chat messages.",
        widget=forms.URLInput,
    )
    chat_enabled = forms.BooleanField(required=False, label="Post approval events to the team's chat")
