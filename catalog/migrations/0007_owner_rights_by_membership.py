"""The owning team's maintainers may edit an agent or tool because they maintain its owner (`services.can_edit`),
not through a guardian row per entity. Those rows duplicated the owner column: they had to be moved by hand on
every ownership change, and they were a third of what importing 10,000 entities cost PostgreSQL (seven indexes
and three foreign keys per row). Guardian keeps what only it can say: change permissions given explicitly, such
as to another team's group. This removes the rows that merely restated ownership."""

from typing import Any

from django.db import migrations
from django.db.models import CharField, Exists, OuterRef
from django.db.models.functions import Cast


def _owner_rows(apps: Any, model_name: str) -> Any:
    """Guardian rows giving an entity's own owners' maintainers group its change permission."""
    GroupObjectPermission = apps.get_model("guardian", "GroupObjectPermission")
    Model = apps.get_model("catalog", model_name)
    owned = Model.objects.annotate(pk_text=Cast("pk", CharField())).filter(
        pk_text=OuterRef("object_pk"), owner__maintainers_group_id=OuterRef("group_id")
    )
    return GroupObjectPermission.objects.filter(
        content_type__app_label="catalog",
        content_type__model=model_name,
        permission__codename=f"change_{model_name}",
    ).filter(Exists(owned))


def forward(apps: Any, schema_editor: Any) -> None:
    for model_name in ("agent", "tool"):
        _owner_rows(apps, model_name).delete()


def backward(apps: Any, schema_editor: Any) -> None:
    """Give the rows back, for code that still reads them."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    GroupObjectPermission = apps.get_model("guardian", "GroupObjectPermission")
    for model_name in ("agent", "tool"):
        content_type = ContentType.objects.filter(app_label="catalog", model=model_name).first()
        permission = Permission.objects.filter(content_type=content_type, codename=f"change_{model_name}").first()
        if content_type is None or permission is None:
            continue  # a database that never had the permissions has no entities either
        existing = set(
            GroupObjectPermission.objects.filter(content_type=content_type, permission=permission).values_list(
                "object_pk", "group_id"
            )
        )
        rows = apps.get_model("catalog", model_name).objects.values_list("pk", "owner__maintainers_group_id")
        GroupObjectPermission.objects.bulk_create(
            [
                GroupObjectPermission(
                    content_type=content_type, permission=permission, object_pk=str(pk), group_id=group_id
                )
                for pk, group_id in rows.iterator(chunk_size=5000)
                if (str(pk), group_id) not in existing
            ],
            batch_size=5000,
        )


class Migration(migrations.Migration):
    dependencies = [("catalog", "0006_drop_unread_entry_indexes"), ("guardian", "__first__")]
    operations = [migrations.RunPython(forward, backward)]
