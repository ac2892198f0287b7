"""The job store and runner without HTTP, on both backends (SQLite file, real PostgreSQL): claims, leases, recovery,
cancel, timeout, retention, webhook claims, migrations, and the errors of a database that cannot be used."""

import sqlite3
import threading
import time

import pytest
from unmask.model.config import ScoringConfig
from unmask.model.predictor import Predictor
from unmask.service.core.processes import HOST
from unmask.service.jobs.store import SCHEMA_VERSION, StoreError
from unmask.service.jobs.stores import open_store
from unmask.service.jobs.worker import JobRunner

DEAD_PID = 2**22 + 12345  # above pid_max's default: no such process


@pytest.fixture
def other(store_url):
    """A second process's view of the same database (its own identity and connections)."""
    s = open_store(store_url)
    yield s
    s.close()


def test_claim_in_order_and_recover_what_a_dead_process_of_this_host_left(store, other):
    a, b = store.add("path", "a.jpg", "a.jpg"), store.add("path", "b.jpg", "b.jpg")
    other.worker_id = f"{HOST}:{DEAD_PID}:cafe"  # as if `other` had been killed while it ran a
    assert other.claim_next().id == a.id
    assert store.count("running") == 1 and store.count("queued") == 1
    assert store.recover(max_attempts=2) == (1, 0)  # its process is gone: re-queued at once, not after the lease
    assert store.get(a.id).state == "queued"
    assert other.claim_next().id == a.id and store.get(a.id).attempts == 2
    assert store.recover(max_attempts=2) == (0, 1)  # died twice: failed with a reason
    failed = store.get(a.id)
    assert failed.state == "failed" and "2 times" in failed.error
    assert store.get(b.id).state == "queued"


def test_a_dead_holders_job_waiting_for_the_sweep_reads_as_just_expired(store, other, monkeypatch):
    """While another process holds the sweep lock, recover's marked jobs wait for its next sweep: their lease
    reads as ended a moment ago (an overdue figure a lease watch can use), not as 0 (56 years overdue)."""
    job = store.add("path", "a.jpg", "a.jpg")
    other.worker_id = f"{HOST}:{DEAD_PID}:cafe"
    assert other.claim_next().id == job.id
    monkeypatch.setattr(store, "expire_leases", lambda max_attempts: (0, 0))  # the sweep lock is someone else's
    store.recover(max_attempts=2)
    marked = store.get(job.id)
    assert marked.state == "running" and 0 < time.time() - marked.lease_until < 60
    monkeypatch.undo()
    assert store.expire_leases(max_attempts=2) == (1, 0)  # the next sweep takes it


def test_a_live_process_keeps_its_job_when_another_starts(store, other):
    job = store.add("path", "a.jpg", "a.jpg")
    assert other.claim_next().id == job.id
    assert store.recover(max_attempts=2) == (0, 0)  # `other` runs in a live process and its lease holds
    assert store.get(job.id).state == "running" and store.get(job.id).worker_id == other.worker_id


def test_an_expired_lease_is_swept_by_any_process_and_its_holder_cannot_write_after(store_url, store):
    stalled = open_store(store_url, lease_s=0.3)
    try:
        job = store.add("path", "a.jpg", "a.jpg")
        assert stalled.claim_next().id == job.id
        assert store.expire_leases(max_attempts=3) == (0, 0)  # not yet
        time.sleep(0.5)
        assert store.expire_leases(max_attempts=3) == (1, 0)
        swept = store.get(job.id)
        assert (swept.state, swept.attempts, swept.worker_id) == ("queued", 1, None)  # the interrupted start counts
        assert store.claim_next().id == job.id
        assert stalled.progress(job.id, 1, 2) is None  # the stalled worker learns it lost the job ...
        assert stalled.finish(job.id, "done", result={"status": "ok"}) is False  # ... and cannot end it
        assert store.finish(job.id, "done", result={"status": "ok"}) is True
        assert store.get(job.id).attempts == 2
    finally:
        stalled.close()


def test_renewed_leases_hold_and_progress_renews_too(store_url, store):
    worker = open_store(store_url, lease_s=0.4)
    try:
        a, b = store.add("path", "a.jpg", "a.jpg"), store.add("path", "b.jpg", "b.jpg")
        worker.claim_next(), worker.claim_next()
        for _ in range(6):  # 1.2 s: three leases long
            time.sleep(0.2)
            assert worker.renew() == 2
            assert worker.progress(a.id, 1, 4) is False
            assert store.expire_leases(max_attempts=3) == (0, 0)
        assert {store.get(a.id).state, store.get(b.id).state} == {"running"}
    finally:
        worker.close()


def test_workers_claiming_at_once_never_take_the_same_job(store_url, store):
    ids = set(store.add_many("path", [(f"{i}.jpg", f"{i}.jpg") for i in range(60)]))
    workers = [open_store(store_url) for _ in range(3)]
    claimed: list[str] = []
    start = threading.Barrier(len(workers))

    def drain(worker):
        start.wait()
        while (job := worker.claim_next()) is not None:
            claimed.append(job.id)
            assert worker.finish(job.id, "done", result={"status": "ok"})

    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for w in workers:
        w.close()
    assert sorted(claimed) == sorted(ids)  # each once
    assert store.count("done") == 60 and all(store.get(i).attempts == 1 for i in ids)


def test_a_clean_hand_back_is_not_counted_and_only_the_holder_can_do_it(store, other):
    job = store.add("path", "a.jpg", "a.jpg")
    assert store.claim_next().id == job.id
    other.requeue(job.id)  # not its job: nothing happens
    assert store.get(job.id).state == "running"
    store.requeue(job.id)
    assert (store.get(job.id).state, store.get(job.id).attempts) == ("queued", 0)


def test_cancel_queued_now_running_on_request_from_another_process(store, other):
    queued = store.add("path", "q.jpg", "q.jpg")
    running = store.add("path", "r.jpg", "r.jpg")
    other.cancel(queued.id)
    assert store.get(queued.id).state == "cancelled"
    assert store.claim_next().id == running.id
    other.cancel(running.id)
    assert store.get(running.id).state == "running" and store.progress(running.id, 1, 8) is True


def test_a_webhook_delivery_is_claimed_by_one_process_at_a_time(store, other):
    job = store.add("path", "a.jpg", "a.jpg", callback_url="https://hooks.example.com/x")
    store.claim_next()
    store.finish(job.id, "done", result={"status": "ok"})
    assert store.claim_callback(hold_s=60).id == job.id
    assert other.claim_callback(hold_s=60) is None  # held by the first sender
    other.callback_tried(job.id, "delivered", 200, None, None)  # not its claim: not recorded
    assert store.get(job.id).callback_state == "pending"
    store.callback_tried(job.id, "pending", 500, "the receiver answered 500", retry_in=0.0)
    retried = other.claim_callback(hold_s=0.0)  # due again, for any sender
    assert retried.id == job.id and retried.callback_attempts == 1
    time.sleep(0.05)
    assert store.claim_callback(hold_s=60).id == job.id  # a claim past its hold (its sender died) is taken over
    store.callback_tried(job.id, "delivered", 200, None, None)
    done = store.get(job.id)
    assert (done.callback_state, done.callback_attempts, done.callback_next) == ("delivered", 2, None)


def test_job_ids_are_random_and_listing_pages_follow_insertion_order(store):
    ids = [store.add("path", f"{i}.jpg", f"{i}.jpg").id for i in range(5)]
    assert len(set(ids)) == 5 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    first = store.list_jobs(limit=2)
    assert [j.id for j in first] == ids[:-3:-1]
    assert [j.id for j in store.list_jobs(limit=10, before=first[-1].seq)] == ids[2::-1]


def test_a_job_past_its_timeout_fails_with_the_reason(store, tiny_checkpoint, shared_data):
    runner = JobRunner(store, Predictor(tiny_checkpoint, ScoringConfig(backend="torch")), timeout_s=0.0)
    job = store.add("path", str(shared_data / "clips" / "ffpp_real_004.mp4"), "clip.mp4")
    claimed = store.claim_next()
    runner._run(claimed.id, claimed.path, claimed.name, claimed.options)
    done = store.get(job.id)
    assert done.state == "failed" and "timeout of 0 s" in done.error


def test_uploads_are_deleted_after_retention(store, tmp_path, tiny_checkpoint):
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"x")
    kept = tmp_path / "kept.bin"
    kept.write_bytes(b"x")
    job = store.add("upload", str(upload), "a.jpg")
    store.add("upload", str(kept), "b.jpg")  # still queued: kept
    store.claim_next()
    store.finish(job.id, "done", result={"status": "ok"})
    runner = JobRunner(store, Predictor(tiny_checkpoint, ScoringConfig(backend="torch")), retention_s=0.0)
    runner._sweep_uploads()
    assert not upload.exists() and kept.exists()
    assert store.get(job.id).path == ""


# -- schema -------------------------------------------------------------------------


def test_a_jobs_db_of_the_first_release_opens_and_its_interrupted_job_runs_again(tmp_path):
    path = tmp_path / "jobs.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE jobs (id TEXT PRIMARY KEY, state TEXT NOT NULL, source TEXT NOT NULL, path TEXT NOT NULL, name TEXT NOT NULL,
            batch_id TEXT, created REAL NOT NULL, started REAL, finished REAL, attempts INTEGER NOT NULL DEFAULT 0,
            progress_done INTEGER NOT NULL DEFAULT 0, progress_total INTEGER NOT NULL DEFAULT 0,
            cancel_requested INTEGER NOT NULL DEFAULT 0, result TEXT, error TEXT);
        INSERT INTO jobs (id, state, source, path, name, created, attempts) VALUES ('old', 'running', 'path', 'a.jpg', 'a.jpg', 1.0, 1);
        INSERT INTO jobs (id, state, source, path, name, created, finished, result) VALUES
            ('done', 'done', 'path', 'b.jpg', 'b.jpg', 1.0, 2.0, '{"status": "ok"}');
    """)
    db.close()
    store = open_store(f"sqlite:///{path}")
    try:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.get("done").result == {"status": "ok"} and store.get("done").options == {}
        assert store.recover(max_attempts=2) == (1, 0)  # left running by the old release: no lease, swept at once
        assert store.claim_next().id == "old"
    finally:
        store.close()
    reopened = open_store(f"sqlite:///{path}")  # migrations are applied once
    assert reopened.schema_version() == SCHEMA_VERSION and reopened.get("old").state == "running"
    reopened.close()


def test_a_database_of_a_newer_release_is_refused_with_the_reason(store_url):
    open_store(store_url).close()
    bump = open_store(store_url)
    with bump._tx() as db:
        db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION + 1,))
    bump.close()
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}.*upgrade unmask"):
        open_store(store_url)


# -- a database that cannot be used -------------------------------------------------


def test_an_unsupported_scheme_and_a_bad_sqlite_url_say_what_is_expected(tmp_path):
    with pytest.raises(StoreError, match="unsupported database URL scheme 'mysql'"):
        open_store("mysql://u:p@127.0.0.1/jobs")
    with pytest.raises(StoreError, match="sqlite:///RELATIVE/PATH"):
        open_store("sqlite://jobs.db")
    (tmp_path / "not-a-db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open the job database"):
        open_store(f"sqlite:///{tmp_path / 'not-a-db'}")


def test_an_unreachable_server_and_a_wrong_password_are_one_line_without_the_password(postgres_server):
    from .live import free_port

    with pytest.raises(StoreError) as refused:
        open_store(postgres_server.url(port=free_port()))
    assert "cannot connect to unmask@127.0.0.1:" in str(refused.value) and "refused" in str(refused.value).lower()
    with pytest.raises(StoreError) as wrong:
        open_store(postgres_server.url(password="not-the-password"))
    message = str(wrong.value)
    assert "password authentication failed" in message and "not-the-password" not in message and "\n" not in message
