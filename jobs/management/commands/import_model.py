"""Register a trained model folder (from mlcore, the benchmarks, or any HF sequence classifier) for a user.

Runs in: an operator's shell (manage.py import_model).
"""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from jobs.registry.services import import_model
from mlcore.data import DataError
from mlcore.loading import ModelLoadError
from mlcore.modelcheck import ModelCheckError


class Command(BaseCommand):
    help = "Import a trained model folder as a model record of --owner; prints the new record's id."

    def add_arguments(self, parser):
        parser.add_argument("folder")
        parser.add_argument("--owner", required=True, help="username that will own the model")
        parser.add_argument("--name", default="")
        parser.add_argument("--promote", action="store_true", help="make it the owner's serving model")
        parser.add_argument(
            "--precision", choices=["fp32", "int8"],
            help="serving precision (default: chosen on --validation-file as after training, else fp32)",
        )
        parser.add_argument(
            "--validation-file",
            help="labelled rows (CSV/TSV/JSONL) the model did not train on: int8 is measured against fp32 on "
            "them and chosen as after a training job",
        )

    def handle(self, *args, folder, owner, name, promote, precision, validation_file, **options):
        try:
            user = get_user_model().objects.get(username=owner)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user {owner!r}") from None
        try:
            record = import_model(
                user, folder, name=name, promote_it=promote, validation_file=validation_file
            )
        except (ModelCheckError, ModelLoadError, DataError) as e:
            raise CommandError(str(e)) from e
        except ValidationError as e:  # the owner's storage quota
            raise CommandError("; ".join(e.messages)) from e
        if precision:
            record.serving_precision = precision
            record.save(update_fields=["serving_precision"])
        self.stdout.write(str(record.pk))
