from rest_framework import serializers

from portal.models import ApiToken, AuditEvent


class ApiTokenSerializer(serializers.ModelSerializer):
    state = serializers.CharField(read_only=True, help_text="active, expired or revoked")
    identity = serializers.CharField(source="user.username", read_only=True, help_text="Who the token acts as.")

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "kind",
            "subject",
            "identity",
            "key_prefix",
            "scopes",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "state",
            "bound_agent_id",
        ]
        read_only_fields = fields


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="What the token is for.")
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ApiToken.Scope.choices),
        min_length=1,
        help_text="read, write, review, admin, telemetry",
    )
    expires_in_days = serializers.IntegerField(min_value=1, max_value=365, default=90, help_text="Lifetime in days.")
    agent = serializers.CharField(
        max_length=63, required=False, default="", help_text="Bind a telemetry token to one agent you own."
    )


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The secret. Shown once; store it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    authenticated_by = serializers.CharField(help_text="session or token")
    token_scopes = serializers.ListField(child=serializers.CharField(), allow_null=True)
    roles = serializers.ListField(child=serializers.CharField())
    teams = serializers.ListField(child=serializers.CharField())


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "sequence",
            "occurred_at",
            "actor_kind",
            "actor_label",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "changes",
            "request_id",
            "client_ip",
            "prev_hash",
            "hash",
        ]


class ErrorDetailSerializer(serializers.Serializer):
    status = serializers.IntegerField(help_text="The HTTP status code.")
    code = serializers.CharField(help_text="Machine-readable code, e.g. `invalid`, `permission_denied`, `conflict`.")
    message = serializers.CharField(help_text="What went wrong, for people.")


# `fields` is the name of a Serializer property, so it cannot be declared as a class attribute.
ErrorDetailSerializer._declared_fields["fields"] = serializers.DictField(
    help_text="For `invalid`: each field (or path such as `capabilities[0].name`) and what was wrong with it."
)


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer(help_text="The one error shape of the whole API.")
