from rest_framework import serializers

from runtime.models import Evaluation, Finding


class FindingSerializer(serializers.ModelSerializer):
    agent = serializers.CharField(source="agent_key", read_only=True)
    tool = serializers.CharField(source="tool_key", read_only=True)
    kind = serializers.CharField(read_only=True, help_text=f"One of: {', '.join(Finding.Kind.values)}.")

    class Meta:
        model = Finding
        fields = [
            "id",
            "agent",
            "tool",
            "kind",
            "state",
            "severity",
            "owner_team",
            "capability",
            "environment",
            "detail",
            "count",
            "first_seen",
            "last_seen",
            "closed_at",
            "reason",
            "grant_id",
        ]
        read_only_fields = fields


class FindingActionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["resolve", "accept", "request_grant"])
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class EvaluationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Evaluation
        fields = [
            "id",
            "agent_name",
            "suite",
            "passed",
            "score",
            "threshold",
            "version",
            "commit",
            "run_url",
            "reported_at",
            "reported_by",
        ]
        read_only_fields = ["id", "agent_name", "reported_at", "reported_by"]
