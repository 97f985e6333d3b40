"""ClearTax KSA API client: endpoint operations, the shared request pipeline, typed results.

Airflow code uses it through :class:`~airflow_provider_cleartax.hooks.cleartax.ClearTaxHook`.
"""
