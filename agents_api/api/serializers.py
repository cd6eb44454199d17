from __future__ import annotations

from rest_framework import serializers

from catalog.grant_rules import Verdict

NAME_HELP = "Catalog name (case-insensitive)."


class GrantCheckRequestSerializer(serializers.Serializer):
    agent = serializers.CharField(max_length=63, help_text=f"The calling agent. {NAME_HELP}")
    tool = serializers.CharField(max_length=200, help_text=f"The tool it calls. {NAME_HELP}")
    capability = serializers.CharField(
        max_length=200,
        required=False,
        allow_null=True,
        allow_blank=True,
        default=None,
        help_text="The capability (MCP tool name) called; left out, any grant that covers something allows.",
    )
    environment = serializers.CharField(
        max_length=63, required=False, default="production", help_text="Environment of the call."
    )


class GrantCheckSerializer(serializers.Serializer):
    allowed = serializers.BooleanField(help_text="True only for an approved, unexpired grant that covers the call.")
    reason = serializers.CharField(help_text="Why, in one sentence, naming the grant when there is one.")
    verdict = serializers.ChoiceField(choices=[verdict.value for verdict in Verdict], help_text="Machine-readable why.")
    grant = serializers.IntegerField(allow_null=True, help_text="The grant the decision rests on, if any.")
    expires_at = serializers.DateTimeField(allow_null=True, help_text="When that grant lapses, if it does.")
