def test_healthz_answers_without_a_database(unmigrated_app):
    response = unmigrated_app.test_client().get("/healthz")

    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_is_ready_when_the_schema_is_at_head(app, client):
    from crm_backend.health import register_check

    # Stands in for a loaded need model (test_classifier_api.py uses a real one).
    register_check(app, "classifier", lambda: None)
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json == {"status": "ready", "checks": {"database": "ok", "migrations": "ok", "classifier": "ok"}}


def test_readyz_is_503_problem_on_an_unmigrated_database(unmigrated_app):
    response = unmigrated_app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.json["checks"] == {"database": "ok", "migrations": "failed", "classifier": "failed"}
    assert "crm init-db" in response.json["detail"]


def test_readyz_reports_an_unreachable_database(tmp_path):
    from crm_backend import create_app

    # A directory cannot be opened as a SQLite file.
    (tmp_path / "dir.db").mkdir()
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'dir.db'}"})

    response = app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.json["checks"]["database"] == "failed"
    assert "database" in response.json["detail"]


def test_readyz_runs_checks_registered_by_other_parts(app, client):
    from crm_backend.health import register_check

    register_check(app, "classifier", lambda: "no model is loaded")

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json["checks"]["classifier"] == "failed"
    assert "classifier: no model is loaded" in response.json["detail"]
