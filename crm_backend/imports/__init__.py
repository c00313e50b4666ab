"""Bulk imports from CSV: customers (`crm import-customers`, POST
/api/v1/customers/import) and orders (`crm import-orders`). See docs/import.md.

``CRM_IMPORT_MAX_BYTES`` and ``CRM_IMPORT_BATCH_SIZE`` are settings
(crm_backend/settings.py); ``create_app`` registers the blueprint (views.py)
and the commands (commands.py).
"""
