"""Command-line helpers of the repository: the demo, the sample ERP and a local Airflow to run them on."""
