"""A grant covers named capabilities; hints attestations keep their evidence.

Approved grants with an empty capability list meant "every capability"; from now on an empty list covers nothing,
so each one is frozen to the capabilities its tool has now (what it covered the moment before this migration).
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models




def freeze_approved_grants(apps, schema_editor):  # type: ignore[no-untyped-def]
    grant_model = apps.get_model("catalog", "ToolGrant")
    capability_model = apps.get_model("catalog", "Capability")
    grants = grant_model.objects.filter(status="approved", capability_names=[])
    for grant in grants.iterator():
        names = sorted(capability_model.objects.filter(tool_id=grant.tool_id).values_list("name", flat=True))
        grant_model.objects.filter(pk=grant.pk).update(capability_names=names)


class Migration(migrations.Migration):

    dependencies = [
        ('catalog', '0011_entity_source_kind'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='toolgrant',
            name='capability_names',
            field=models.JSONField(blank=True, default=list, help_text='Capabilities covered; frozen when approved. Empty covers nothing.'),
        ),
        migrations.CreateModel(
            name='HintsAttestation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('attested_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('capabilities_hash', models.CharField(help_text='The capabilities (names and hints) attested.', max_length=64)),
                ('declared', models.JSONField(default=list, help_text='The capabilities with their hints, as declared.')),
                ('observed', models.JSONField(blank=True, help_text='The tools and hints the live MCP server listed; null when not introspected.', null=True)),
                ('observed_note', models.CharField(blank=True, help_text='Why nothing was observed, if so.', max_length=500)),
                ('server', models.JSONField(blank=True, default=dict, help_text='Server name, version and protocol, if observed.')),
                ('differences', models.JSONField(blank=True, default=list, help_text='Declared vs observed, one sentence each.')),
                ('comment', models.TextField(blank=True)),
                ('invalidated_at', models.DateTimeField(blank=True, null=True)),
                ('invalidated_reason', models.CharField(blank=True, max_length=300)),
                ('attested_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('tool', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='hints_attestations', to='catalog.tool')),
            ],
            options={
                'ordering': ['-attested_at', '-pk'],
                'indexes': [models.Index(fields=['tool', '-attested_at'], name='hints_attestation_tool_idx')],
            },
        ),
        migrations.RunPython(freeze_approved_grants, migrations.RunPython.noop),
    ]
