"""Importing customers and orders from CSV: cleaning, merging, updating, batches,
the `crm import-*` commands and POST /api/v1/customers/import."""

import csv
import io
import json
import re
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from crm_backend.db import get_session
from crm_backend.imports import cleaning
from crm_backend.imports import customers as customer_import
from crm_backend.imports import orders as order_import
from crm_backend.imports.cleaning import BadValue, clean_email, clean_name, clean_phone, clean_timestamp
from crm_backend.imports.csvfile import ImportFileError
from crm_backend.imports.csvfile import read_table
from crm_backend.imports.results import ImportResult
from crm_backend.models import AuditEvent, Customer, Order, WebhookEvent, normalise_email
from test_webhooks_support import admin, private_app, register  # noqa: F401  (fixtures)

IMPORT = "/api/v1/customers/import"


def csv_bytes(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def import_customers(app, data: bytes, **options):
    with app.app_context():
        return customer_import.import_customers(get_session(), data, **options)


def import_orders(app, data: bytes, **options):
    with app.app_context():
        return order_import.import_orders(get_session(), data, **options)


def stored_customers(app) -> dict[str, tuple[str, str | None]]:
    with app.app_context():
        return {c.email: (c.name, c.phone) for c in get_session().scalars(select(Customer))}


def count(app, model) -> int:
    with app.app_context():
        return get_session().scalar(select(func.count()).select_from(model))


def accounted_for(result) -> bool:
    """Every row read is in exactly one bucket."""
    return result.read == result.created + result.updated + result.unchanged + result.merged + result.rejected + result.failed


@pytest.fixture
def refreshed(monkeypatch) -> list[set[int]]:
    """A stand-in for crm_backend.insights' refresh; returns the id sets it was given."""
    calls: list[set[int]] = []
    monkeypatch.setattr(order_import.insights, "refresh_customers", lambda session, ids: calls.append(set(ids)))
    return calls


# --- cleaning single values ---------------------------------------------------


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("  ada   lovelace ", "Ada Lovelace"),
        ("ADA LOVELACE", "Ada Lovelace"),
        ("o'brien", "O'Brien"),
        ("PATRICK O'BRIEN", "Patrick O'Brien"),
        ("MCDONALD", "McDonald"),
        ("anne-marie dupont", "Anne-Marie Dupont"),
        ("LUDWIG VAN BEETHOVEN", "Ludwig van Beethoven"),
        ("ANNA DO", "Anna Do"),
        ("henry viii", "Henry VIII"),
        ("van der Berg", "van der Berg"),
        ("DeShawn Jones", "DeShawn Jones"),
        ("McAdams", "McAdams"),
        ("李小龍", "李小龍"),
        ("", ""),
    ],
)
def test_names_in_one_case_are_title_cased_and_mixed_case_names_are_kept(raw, clean):
    assert clean_name(raw) == clean


@pytest.mark.parametrize(
    "raw, clean",
    [(" Ada@Example.COM ", "ada@example.com"), ("<bob@example.com>", "bob@example.com"), ("mailto:Bob@Example.com", "bob@example.com")],
)
def test_emails_are_trimmed_checked_and_lower_cased(raw, clean):
    assert clean_email(raw) == clean


@pytest.mark.parametrize("raw", ["bob@", "bob at example.com", "a b@example.com", "bob@example", ""])
def test_bad_emails_say_why(raw):
    with pytest.raises(BadValue, match="e-mail"):
        clean_email(raw)


LOCAL_PARTS = st.from_regex(r"[A-Za-z0-9._+\-!#]{0,70}", fullmatch=True)
LABELS = st.lists(st.from_regex(r"[A-Za-z0-9\-]{0,70}", fullmatch=True), max_size=4)
TOP_LEVELS = st.sampled_from(["com", "co.uk", "test", "local", "localhost", "invalid", "onion", "123", "x", "xn--p1ai", "xn--zz"])


@settings(max_examples=300, deadline=None)
@given(st.builds(lambda local, labels, top: f"{local}@{'.'.join([*labels, top])}", LOCAL_PARTS, LABELS, TOP_LEVELS) | st.emails())
def test_the_shortcut_for_plain_addresses_agrees_with_email_validator(address):
    try:
        expected = normalise_email(validate_email(address, check_deliverability=False).normalized)
    except EmailNotValidError:
        expected = None

    shortcut = cleaning._simple_address(address.lower())

    assert shortcut is None or shortcut == expected


@pytest.mark.parametrize(
    "raw, region, clean",
    [
        ("020 7946 0958", "GB", "+442079460958"),
        ("+1 (202) 555-0143", None, "+12025550143"),
        ("0044 20 7946 0958", "GB", "+442079460958"),
        ("  ", "GB", None),
    ],
)
def test_phones_become_e164(raw, region, clean):
    assert clean_phone(raw, region) == clean


@pytest.mark.parametrize(
    "raw, region, reason",
    [("020 7946 0958", None, "no country code"), ("12345", "GB", "not valid"), ("call me", "GB", "not a phone number")],
)
def test_bad_phones_say_why(raw, region, reason):
    with pytest.raises(BadValue, match=reason):
        clean_phone(raw, region)


@pytest.mark.parametrize(
    "raw, moment",
    [
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=timezone.utc)),
        ("2026-11-20T10:15:00", datetime(2026, 11, 20, 10, 15, tzinfo=timezone.utc)),
        ("2026-11-20T10:15:00+01:00", datetime(2026, 11, 20, 9, 15, tzinfo=timezone.utc)),
        ("2026-11-20 10:15Z", datetime(2026, 11, 20, 10, 15, tzinfo=timezone.utc)),
    ],
)
def test_order_dates_are_iso_8601_and_naive_means_utc(raw, moment):
    assert clean_timestamp(raw) == moment


# --- the customer file ----------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "name,email,phone",
        "Full Name,E-mail,Mobile",
        "full_name,Email Address,Phone Number",
        "CUSTOMER NAME;E-MAIL ADDRESS;TELEPHONE",
        "Customer Name\tEMAIL\ttelephone",
    ],
)
def test_common_header_names_and_delimiters_are_recognised(app, header):
    delimiter = ";" if ";" in header else "\t" if "\t" in header else ","
    row = delimiter.join(["Ada Lovelace", "ada@example.com", "+44 20 7946 0958"])

    result = import_customers(app, csv_bytes(header, row))

    assert result.created == 1
    assert stored_customers(app) == {"ada@example.com": ("Ada Lovelace", "+442079460958")}


def test_first_and_last_name_columns_make_the_name_and_unknown_columns_are_ignored(app):
    import_customers(app, csv_bytes("Customer ID,First Name,Last Name,Email,Notes", "17,grace,HOPPER,grace@example.com,VIP"))

    assert stored_customers(app) == {"grace@example.com": ("Grace Hopper", None)}


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "The file is empty."),
        (b"\xef\xbb\xbf \n\n", "The file is empty."),
        (csv_bytes("name,phone", "Ada,+442079460958"), "no email column"),
        (csv_bytes("name,email"), "header line but no rows"),
        ("name,email\nJosé,jose@example.com\n".encode("latin-1"), "not UTF-8 text (line 2"),
    ],
)
def test_unusable_files_are_one_sentence(app, data, message):
    with pytest.raises(ImportFileError, match=re.escape(message)) as raised:
        import_customers(app, data)

    assert str(raised.value).count(". ") == 0 and str(raised.value).endswith(".")


def test_a_byte_order_mark_and_windows_line_ends_are_fine(app):
    result = import_customers(app, "\ufeffEmail,Name\r\nada@example.com,Ada\r\n".encode())

    assert result.created == 1


def test_dirty_rows_are_rejected_with_a_reason_and_line_number(app):
    result = import_customers(
        app,
        csv_bytes(
            "name,email,phone",
            "Ada Lovelace,ada@example.com,",
            "No Mail,,",
            "Bad Mail,bad@,",
            "",
            ",,+44 20 7946 0958",
            ",,",
            "Spaces, grace@example.com ,",
        ),
    )

    assert (result.read, result.created, result.rejected) == (5, 2, 3)
    assert [(issue.line, issue.reason) for issue in result.listed("rejected")] == [
        (3, "no e-mail address"),
        (4, "bad e-mail address 'bad@': There must be something after the @-sign."),
        (6, "no name and no e-mail address"),
    ]
    assert result.cleaning_rate == 40.0  # blank lines (5 and 7) are not rows
    assert accounted_for(result)


def test_a_bad_phone_alone_is_dropped_with_a_warning(app):
    result = import_customers(app, csv_bytes("name,email,phone", "Ada,ada@example.com,12345"), default_region="GB")

    assert result.created == 1 and result.rejected == 0
    assert stored_customers(app) == {"ada@example.com": ("Ada", None)}
    [warning] = result.listed("warning")
    assert warning.line == 2 and "imported without the phone number" in warning.reason


def test_a_new_customer_without_a_name_is_named_after_the_address(app):
    result = import_customers(app, csv_bytes("name,email", ",grace.hopper@example.com"))

    assert stored_customers(app) == {"grace.hopper@example.com": ("grace.hopper", None)}
    assert "no name" in result.listed("warning")[0].reason


def test_rows_with_the_same_email_are_merged_keeping_the_most_complete_values(app):
    result = import_customers(
        app,
        csv_bytes(
            "name,email,phone",
            "Ada,ada@example.com,",
            "ADA LOVELACE, ADA@Example.com ,+44 20 7946 0958",
            ",ada@example.com,+1 202 555 0143",
        ),
    )

    assert (result.read, result.created, result.merged) == (3, 1, 2)
    assert stored_customers(app) == {"ada@example.com": ("Ada Lovelace", "+442079460958")}
    assert [issue.reason for issue in result.listed("merged")] == ["same e-mail as line 2; merged into it"] * 2
    assert accounted_for(result)


def test_cleaning_in_several_processes_gives_the_same_records_and_issues():
    rows = [f"person {n},Person{n}@Example.com,{'020 7946 0958' if n % 3 else 'no phone'}" for n in range(2500)]
    table = read_table(csv_bytes("name,email,phone", *rows, "again,person7@example.com,").decode(), customer_import.CUSTOMER_HEADERS, ("email",))
    outcomes = []
    for processes in (1, 2):
        result = ImportResult(columns=table.header, read=len(table.rows))
        records = customer_import.clean_rows(table, "GB", result, processes=processes)
        outcomes.append(([(r.row.line, r.email, r.name, r.phone) for r in records], result.issues, result.merged))

    assert outcomes[0] == outcomes[1]
    assert len(outcomes[0][0]) == 2500 and outcomes[0][2] == 1


def test_stored_customers_are_updated_with_non_empty_values_that_differ(app, add_customers):
    add_customers(("Ada Lovelace", "ada@example.com"), ("Grace Hopper", "grace@example.com"), ("Alan Turing", "alan@example.com"))

    result = import_customers(
        app,
        csv_bytes(
            "name,email,phone",
            "Ada Lovelace,ADA@example.com,+44 20 7946 0958",  # new phone
            ",grace@example.com,",  # nothing to say
            "ALAN TURING,alan@example.com,",  # the same name, once cleaned
            "Edsger Dijkstra,edsger@example.com,",
        ),
    )

    assert (result.created, result.updated, result.unchanged) == (1, 1, 2)
    customers = stored_customers(app)
    assert customers["ada@example.com"] == ("Ada Lovelace", "+442079460958")
    assert customers["grace@example.com"] == ("Grace Hopper", None)
    assert count(app, Customer) == 4


def test_every_creation_and_update_is_audited_like_the_api_does(app, add_customers):
    add_customers(("Ada Lovelace", "ada@example.com"))

    import_customers(app, csv_bytes("name,email", "Ada King,ada@example.com", "Grace Hopper,grace@example.com"))

    with app.app_context():
        events = get_session().scalars(select(AuditEvent).order_by(AuditEvent.action)).all()
        audited = [(e.action, e.actor_type, e.before, e.after) for e in events if e.entity_type == "customer"]
    assert audited == [
        ("customer.created", "cli", None, {"name": "Grace Hopper", "email": "grace@example.com", "phone": None}),
        ("customer.updated", "cli", {"name": "Ada Lovelace"}, {"name": "Ada King"}),
    ]


def test_created_and_updated_customers_reach_the_outbox_as_the_api_shows_them(app, client, admin, register, add_customers):
    register("http://127.0.0.1:9/hook", events=["customer.created", "customer.updated"])
    add_customers(("Ada Lovelace", "ada@example.com"))

    import_customers(app, csv_bytes("name,email", "Ada King,ada@example.com", "Grace Hopper,grace@example.com"))

    with app.app_context():
        payloads = [json.loads(e.payload) for e in get_session().scalars(select(WebhookEvent).order_by(WebhookEvent.id))]
    by_type = {payload["type"]: payload["data"] for payload in payloads}
    assert set(by_type) == {"customer.created", "customer.updated"}
    for data in by_type.values():
        assert data == client.get(f"/api/v1/customers/{data['id']}", headers=admin).json


def test_importing_the_same_file_twice_changes_nothing_the_second_time(app):
    data = csv_bytes("name,email,phone", "Ada,ada@example.com,+442079460958", "Grace,grace@example.com,")
    import_customers(app, data)

    again = import_customers(app, data)

    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert count(app, AuditEvent) == 2


def test_a_dry_run_counts_but_stores_nothing(app, add_customers):
    add_customers(("Ada Lovelace", "ada@example.com"))

    result = import_customers(app, csv_bytes("name,email", "Ada King,ada@example.com", "Grace,grace@example.com"), dry_run=True)

    assert (result.created, result.updated, result.dry_run) == (1, 1, True)
    assert stored_customers(app) == {"ada@example.com": ("Ada Lovelace", None)}
    assert count(app, AuditEvent) == 0


def test_a_failing_batch_is_rolled_back_and_reported_while_the_others_stand(app, monkeypatch):
    real_create = customer_import.create_customers
    calls = []

    def create_failing_second_batch(session, customers):
        calls.append(len(customers))
        created = real_create(session, customers)
        if len(calls) == 2:
            raise IntegrityError("INSERT INTO customers", {}, Exception("UNIQUE constraint failed: customers.email"))
        return created

    monkeypatch.setattr(customer_import, "create_customers", create_failing_second_batch)
    rows = [f"Person {n},person{n}@example.com" for n in range(1, 6)]

    result = import_customers(app, csv_bytes("name,email", *rows), batch_size=2)

    assert (result.created, result.failed) == (3, 2)
    assert sorted(stored_customers(app)) == ["person1@example.com", "person2@example.com", "person5@example.com"]
    [batch] = result.failed_batches
    assert (batch.number, batch.first_line, batch.last_line, batch.records) == (2, 4, 5, 2)
    assert "UNIQUE constraint failed" in batch.error
    assert [issue.line for issue in result.listed("failed")] == [4, 5]
    assert count(app, AuditEvent) == 3
    assert accounted_for(result)


# --- crm import-customers ---------------------------------------------------------


def test_the_command_prints_counts_the_cleaning_rate_and_a_json_last_line(app, run_cli, tmp_path):
    source = tmp_path / "customers.csv"
    source.write_bytes(csv_bytes("name,email,phone", "Ada,ada@example.com,020 7946 0958", "Bad,nope,", "ADA,Ada@example.com,"))
    report = tmp_path / "report.csv"

    result = run_cli("import-customers", str(source), "--default-region", "gb", "--report", str(report))

    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert {key: figures[key] for key in ("read", "created", "updated", "unchanged", "merged", "rejected", "failed")} == {
        "read": 3, "created": 1, "updated": 0, "unchanged": 0, "merged": 1, "rejected": 1, "failed": 0,
    }
    assert figures["cleaning_rate"] == 66.67
    assert "Cleaning rate 66.67 %" in result.output
    assert stored_customers(app) == {"ada@example.com": ("Ada", "+442079460958")}
    with report.open(newline="") as report_file:
        lines = list(csv.reader(report_file))
    assert lines == [
        ["line", "outcome", "reason", "name", "email", "phone"],
        ["3", "rejected", "bad e-mail address 'nope': An email address must have an @-sign.", "Bad", "nope", ""],
        ["4", "merged", "same e-mail as line 2; merged into it", "ADA", "Ada@example.com", ""],
    ]


def test_the_report_quotes_cells_a_spreadsheet_would_run(run_cli, tmp_path):
    source = tmp_path / "customers.csv"
    source.write_bytes(csv_bytes("name,email", '=HYPERLINK("http://evil.example"),not-an-email'))
    report = tmp_path / "report.csv"

    result = run_cli("import-customers", str(source), "--report", str(report))

    assert result.exit_code == 0, result.output
    with report.open(newline="") as report_file:
        rejected = list(csv.reader(report_file))[1]
    assert rejected[3] == "'=HYPERLINK(\"http://evil.example\")" and rejected[4] == "not-an-email"


def test_the_command_without_a_report_shows_the_first_rejections(run_cli, tmp_path):
    source = tmp_path / "customers.csv"
    source.write_bytes(csv_bytes("name,email", *[f"P{n},not-an-address-{n}" for n in range(8)]))

    result = run_cli("import-customers", str(source))

    assert result.exit_code == 0
    assert "Line 2 rejected: bad e-mail address" in result.output
    assert "... and 3 more rejected; --report PATH lists every one." in result.output


@pytest.mark.parametrize(
    "content, args, message",
    [
        (b"name,phone\nAda,1\n", [], "has no email column"),
        (b"", [], "The file is empty."),
        (b"email\n\xff\xfe\n", [], "is not UTF-8 text"),
        (b"email\na@example.com\n", ["--default-region", "XX"], "--default-region: 'XX' is not a region code"),
    ],
)
def test_command_errors_are_one_line_and_exit_1(run_cli, tmp_path, content, args, message):
    source = tmp_path / "customers.csv"
    source.write_bytes(content)

    result = run_cli("import-customers", str(source), *args)

    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert [line for line in result.output.splitlines() if line.startswith("Error:")] == result.output.strip().splitlines()[-1:]


def test_the_command_exits_1_after_the_figures_when_a_batch_failed(run_cli, tmp_path, monkeypatch):
    def fail(session, customers):
        raise IntegrityError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(customer_import, "create_customers", fail)
    source = tmp_path / "customers.csv"
    source.write_bytes(csv_bytes("email", "ada@example.com"))

    result = run_cli("import-customers", str(source))

    assert result.exit_code == 1
    assert json.loads(result.output.strip().splitlines()[-1])["failed"] == 1
    assert "batch 1 was rolled back: IntegrityError: disk I/O error" in result.output


def test_the_command_refuses_an_unmigrated_database(unmigrated_app, tmp_path):
    source = tmp_path / "customers.csv"
    source.write_bytes(csv_bytes("email", "ada@example.com"))

    result = unmigrated_app.test_cli_runner().invoke(args=["import-customers", str(source)])

    assert result.exit_code == 1
    assert result.output.strip() == "Error: database is not initialised; run `crm init-db`"


# --- POST /api/v1/customers/import ------------------------------------------------


def test_the_api_imports_a_csv_body_and_lists_rejected_rows(app, client, bearer):
    body = csv_bytes("name,email,phone", "ada lovelace,ada@example.com,020 7946 0958", "Bad,nope,", "Grace,grace@example.com,123")

    response = client.post(f"{IMPORT}?default_region=gb", data=body, content_type="text/csv", headers=bearer("customers:write"))

    assert response.status_code == 200, response.json
    assert {key: response.json[key] for key in ("read", "created", "rejected", "warnings", "cleaning_rate")} == {
        "read": 3, "created": 2, "rejected": 1, "warnings": 1, "cleaning_rate": 66.67,
    }
    assert response.json["columns"] == ["name", "email", "phone"]
    assert response.json["rejected_rows"] == [
        {"line": 3, "reason": "bad e-mail address 'nope': An email address must have an @-sign.", "values": ["Bad", "nope", ""]}
    ]
    assert response.json["warning_rows"][0]["line"] == 4
    assert stored_customers(app)["ada@example.com"] == ("Ada Lovelace", "+442079460958")


def test_the_api_takes_a_multipart_file_and_audits_as_the_api_key(app, client, bearer):
    upload = (io.BytesIO(csv_bytes("email,name", "ada@example.com,Ada")), "customers.csv")

    response = client.post(IMPORT, data={"file": upload}, content_type="multipart/form-data", headers=bearer("customers:*"))

    assert response.status_code == 200, response.json
    assert response.json["created"] == 1
    with app.app_context():
        event = get_session().scalars(select(AuditEvent).where(AuditEvent.entity_type == "customer")).one()
    assert (event.actor_type, event.actor_name) == ("api_key", "test")


def test_a_dry_run_through_the_api_stores_nothing(app, client, bearer):
    response = client.post(f"{IMPORT}?dry_run=true", data=csv_bytes("email", "ada@example.com"), content_type="text/csv", headers=bearer("customers:write"))

    assert response.json["created"] == 1 and response.json["dry_run"] is True
    assert count(app, Customer) == 0


def test_the_api_needs_a_key_with_customers_write(client, bearer):
    body = csv_bytes("email", "ada@example.com")

    anonymous = client.post(IMPORT, data=body, content_type="text/csv")
    reader = client.post(IMPORT, data=body, content_type="text/csv", headers=bearer("customers:read"))

    assert anonymous.status_code == 401
    assert reader.status_code == 403 and "customers:write" in reader.json["detail"]


@pytest.mark.parametrize(
    "body, content_type, status, detail",
    [
        (csv_bytes("name,phone", "Ada,+442079460958"), "text/csv", 422, "The file has no email column"),
        (b"", "text/csv", 422, "The file is empty."),
        ("email\nJosé@example.com\n".encode("latin-1"), "text/csv", 422, "not UTF-8 text"),
        (b'{"email": "ada@example.com"}', "application/json", 415, "text/csv"),
        ({"other": (io.BytesIO(b"email\n"), "x.csv")}, "multipart/form-data", 422, "Invalid field(s): file."),
    ],
)
def test_unusable_uploads_are_problems_not_errors(client, bearer, body, content_type, status, detail):
    response = client.post(IMPORT, data=body, content_type=content_type, headers=bearer("customers:write"))

    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert detail in response.json["detail"]
    if status == 422:  # shaped as the document says: a validation problem naming the file
        assert [error["field"] for error in response.json["errors"]] == ["file"]


def test_a_bad_region_is_a_field_error(client, bearer):
    response = client.post(f"{IMPORT}?default_region=Narnia", data=csv_bytes("email", "a@example.com"), content_type="text/csv", headers=bearer("customers:write"))

    assert response.status_code == 422
    assert [error["field"] for error in response.json["errors"]] == ["default_region"]


def test_the_import_limit_replaces_the_request_limit_for_this_endpoint(app, client, bearer):
    app.config.update(MAX_CONTENT_LENGTH=100, IMPORT_MAX_BYTES=2000)
    headers = bearer("customers:write")
    rows = [f"person{n}@example.com" for n in range(30)]  # ~600 bytes: over the request limit, under the import limit

    accepted = client.post(IMPORT, data=csv_bytes("email", *rows), content_type="text/csv", headers=headers)
    too_large = client.post(IMPORT, data=csv_bytes("email", *rows * 4), content_type="text/csv", headers=headers)
    too_large_file = client.post(
        IMPORT, data={"file": (io.BytesIO(csv_bytes("email", *rows * 4)), "c.csv")}, content_type="multipart/form-data", headers=headers
    )

    assert accepted.status_code == 200 and accepted.json["created"] == 30
    assert too_large.status_code == 413 and "2,000 bytes" in too_large.json["detail"]
    assert too_large_file.status_code == 413


def test_the_openapi_document_describes_both_upload_forms_and_the_errors(client):
    operation = client.get("/api/v1/openapi.json").json["paths"][IMPORT]["post"]

    assert set(operation["requestBody"]["content"]) == {"text/csv", "multipart/form-data"}
    assert operation["security"] == [{"BearerAuth": ["customers:write"]}]
    assert {"200", "401", "403", "413", "415", "422"} <= set(operation["responses"])
    assert "application/problem+json" in operation["responses"]["413"]["content"]
    assert {p["name"] for p in operation["parameters"]} == {"default_region", "dry_run"}


# --- orders -------------------------------------------------------------------------

ORDER_HEADER = "order_id,customer_email,amount,currency,ordered_at,status,refunded_amount"


def stored_orders(app) -> dict[tuple[str, str], tuple]:
    with app.app_context():
        return {
            (o.source, o.external_id): (o.customer.email, o.amount, o.refunded_amount, o.currency, o.status)
            for o in get_session().scalars(select(Order))
        }


def test_orders_are_created_for_known_customers_and_their_insights_refreshed(app, add_customers, refreshed):
    ada_id, grace_id = add_customers(("Ada", "ada@example.com"), ("Grace", "grace@example.com"))

    result = import_orders(
        app,
        csv_bytes(
            ORDER_HEADER,
            "NW-1,ADA@example.com,59.90,eur,2026-11-20T10:15:00+01:00,,",
            "NW-2,grace@example.com,10,GBP,2026-11-21,refunded,",
        ),
    )

    assert (result.created, result.rejected) == (2, 0)
    assert stored_orders(app) == {
        ("import", "NW-1"): ("ada@example.com", Decimal("59.90"), Decimal("0"), "EUR", "paid"),
        ("import", "NW-2"): ("grace@example.com", Decimal("10"), Decimal("10"), "GBP", "refunded"),
    }
    assert refreshed == [{ada_id, grace_id}]


def test_orders_are_upserted_by_source_and_order_id(app, add_customers, refreshed):
    add_customers(("Ada", "ada@example.com"))
    import_orders(app, csv_bytes(ORDER_HEADER, "NW-1,ada@example.com,59.90,EUR,2026-11-20,paid,", "NW-2,ada@example.com,5,EUR,2026-11-20,paid,"))

    again = import_orders(
        app, csv_bytes(ORDER_HEADER, "NW-1,ada@example.com,59.90,EUR,2026-11-20,partially_refunded,9.90", "NW-2,ada@example.com,5.000,EUR,2026-11-20,paid,")
    )
    other_source = import_orders(app, csv_bytes(ORDER_HEADER, "NW-1,ada@example.com,1,EUR,2026-11-20,,"), source="shop")

    assert (again.created, again.updated, again.unchanged) == (0, 1, 1)
    assert other_source.created == 1
    orders = stored_orders(app)
    assert orders[("import", "NW-1")][2:] == (Decimal("9.90"), "EUR", "partially_refunded")
    assert len(orders) == 3
    with app.app_context():
        [update] = get_session().scalars(select(AuditEvent).where(AuditEvent.action == "order.updated")).all()
    assert update.before == {"refunded_amount": "0.000", "status": "paid"}
    assert update.after == {"refunded_amount": "9.90", "status": "partially_refunded"}


def test_bad_order_rows_are_rejected_with_reasons(app, add_customers, refreshed):
    add_customers(("Ada", "ada@example.com"))

    result = import_orders(
        app,
        csv_bytes(
            ORDER_HEADER,
            "NW-1,nobody@example.com,5,EUR,2026-11-20,,",
            "NW-2,ada@example.com,five,EUR,2026-11-20,,",
            "NW-3,ada@example.com,5,EURO,2026-11-20,,",
            "NW-4,ada@example.com,5,EUR,20/11/2026,,",
            "NW-5,ada@example.com,5,EUR,2026-11-20,shipped,",
            "NW-6,ada@example.com,5,EUR,2026-11-20,,7",
            ",ada@example.com,5,EUR,2026-11-20,,",
            "NW-8,ada@example.com,-5,EUR,2026-11-20,,",
            "NW-9,ada@example.com,5,EUR,2026-11-20,,",
        ),
    )

    reasons = {issue.line: issue.reason for issue in result.listed("rejected")}
    assert reasons == {
        2: "no customer with the e-mail nobody@example.com (import the customers first, or use --create-customers)",
        3: "amount 'five' is not a number such as 19.99",
        4: "currency 'EURO' is not a 3-letter ISO 4217 code such as EUR",
        5: "date '20/11/2026' is not ISO 8601 such as 2026-11-23 or 2026-11-23T10:15:00Z",
        6: "status 'shipped' is not one of placed, paid, fulfilled, partially_refunded, refunded, cancelled",
        7: "refunded amount 7 is more than the amount 5",
        8: "no order id",
        9: "amount '-5' is not between 0 and 999,999,999,999.999",
    }
    assert (result.read, result.created, result.rejected) == (9, 1, 8)
    assert accounted_for(result)


def test_the_last_row_of_an_order_wins(app, add_customers, refreshed):
    add_customers(("Ada", "ada@example.com"))

    result = import_orders(app, csv_bytes(ORDER_HEADER, "NW-1,ada@example.com,5,EUR,2026-11-20,paid,", "NW-1,ada@example.com,5,EUR,2026-11-20,refunded,"))

    assert (result.created, result.merged) == (1, 1)
    assert stored_orders(app)[("import", "NW-1")][-1] == "refunded"


def test_missing_order_columns_are_one_sentence(app):
    with pytest.raises(ImportFileError, match="no currency column"):
        import_orders(app, csv_bytes("order_id,email,amount,ordered_at", "1,a@example.com,5,2026-11-20"))


def test_import_orders_can_create_the_missing_customers(app, run_cli, tmp_path, refreshed):
    source = tmp_path / "orders.csv"
    source.write_bytes(csv_bytes("Order Number,Email,Customer Name,Total,Currency,Order Date", "NW-1,new@example.com,NEW PERSON,12.50,usd,2026-11-20"))

    rejected = run_cli("import-orders", str(source))
    created = run_cli("import-orders", str(source), "--create-customers", "--source", "shop")

    assert json.loads(rejected.output.strip().splitlines()[-1])["rejected"] == 1
    figures = json.loads(created.output.strip().splitlines()[-1])
    assert (figures["created"], figures["customers_created"]) == (1, 1)
    assert stored_customers(app) == {"new@example.com": ("New Person", None)}
    assert stored_orders(app) == {("shop", "NW-1"): ("new@example.com", Decimal("12.50"), Decimal("0"), "USD", "paid")}


def test_the_import_orders_command_reports_and_ends_with_json(run_cli, tmp_path, add_customers, refreshed):
    add_customers(("Ada", "ada@example.com"))
    source = tmp_path / "orders.csv"
    source.write_bytes(csv_bytes(ORDER_HEADER, "NW-1,ada@example.com,5,EUR,2026-11-20,,", "NW-2,ada@example.com,x,EUR,2026-11-20,,"))
    report = tmp_path / "report.csv"

    result = run_cli("import-orders", str(source), "--report", str(report), "--batch-size", "1")

    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert (figures["read"], figures["created"], figures["rejected"], figures["cleaning_rate"]) == (2, 1, 1, 50.0)
    assert report.read_text().splitlines()[1].startswith("3,rejected,amount 'x' is not a number")


def test_an_order_import_refreshes_the_customers_insights(app, add_customers):
    add_customers(("Ada", "ada@example.com"))

    result = import_orders(app, csv_bytes(ORDER_HEADER, "NW-1,ada@example.com,5,GBP,2026-11-20,,"))

    assert (result.created, result.failed) == (1, 0)
    with app.app_context():
        ada = get_session().scalars(select(Customer)).one()
    assert ada.insights_updated_at is not None
