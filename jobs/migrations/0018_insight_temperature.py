"""ModelRecord.temperature: the calibration temperature a model is served at (1 unless the job calibrated it)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0017_guard_promotions'),
    ]

    operations = [
        migrations.AddField(
            model_name='modelrecord',
            name='temperature',
            field=models.FloatField(default=1.0, help_text='Served probabilities are softmax(logits / temperature): fitted on the validation rows by the training param calibrate, else 1.'),
        ),
    ]
