"""Create the object storage's bucket (DISTILLERY_S3_BUCKET) if it does not exist, so that a fresh MinIO in
compose is ready before the web process and the workers start. Nothing to do on the filesystem.

Runs in: the compose file's migrate step (and any deploy's release step), once per start.
"""

from botocore.exceptions import ClientError
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the S3 bucket DISTILLERY_S3_BUCKET names, if it does not exist yet (no-op on the filesystem)."

    def handle(self, *args, **options):
        if not settings.DISTILLERY_S3_BUCKET:
            self.stdout.write("no bucket configured: files are stored under MEDIA_ROOT")
            return
        client = default_storage.connection.meta.client  # the storage's own boto3 client, its endpoint and keys
        name = default_storage.bucket_name
        try:
            client.head_bucket(Bucket=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise  # 403 and the like: the credentials are wrong, say so loudly
            region = settings.DISTILLERY_S3_REGION
            elsewhere = region not in (None, "us-east-1")  # S3 refuses a LocationConstraint of us-east-1
            extra = {"CreateBucketConfiguration": {"LocationConstraint": region}} if elsewhere else {}
            client.create_bucket(Bucket=name, **extra)
            self.stdout.write(self.style.SUCCESS(f"created bucket {name}"))
            return
        self.stdout.write(f"bucket {name} exists")
