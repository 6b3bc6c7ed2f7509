"""Admission of a start at its commit: a deferred constraint trigger counts under the workspace's lock

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A start writes one row here with its limits, in the statement that writes its run. The row's trigger is
    # deferred to the commit, where it takes the workspace's lock and counts: the lock is then held for the
    # count and the commit's own flush, never across a round trip to the client (which, on a busy instance,
    # waits its turn in the event loop while every other start of the workspace waits for it). The row only
    # carries the limits to the trigger, which deletes it: the table is empty between transactions, so it is
    # unlogged.
    op.execute(
        """
        CREATE UNLOGGED TABLE IF NOT EXISTS start_admissions (
            execution_id varchar PRIMARY KEY,
            workspace_id varchar NOT NULL,
            lock_key bigint NOT NULL,
            max_active integer NOT NULL,
            runs_per_day integer NOT NULL,
            since timestamptz,
            active_statuses varchar[] NOT NULL
        )
        """
    )
    # Refusals carry SQLSTATE SA429 (concurrency) or SA430 (runs per day) and the count in DETAIL; the
    # executor turns them into 429 answers (sous_executor.adapters.admission).
    op.execute(
        """
        CREATE OR REPLACE FUNCTION sous_admit_at_commit() RETURNS trigger AS $$
        DECLARE
            counted bigint;
        BEGIN
            PERFORM pg_advisory_xact_lock(NEW.lock_key);
            counted := (SELECT count(*) FROM executions e
                        WHERE e.workspace_id = NEW.workspace_id AND e.status = ANY (NEW.active_statuses));
            IF counted > NEW.max_active THEN
                RAISE EXCEPTION 'the workspace runs too many executions'
                    USING ERRCODE = 'SA429', DETAIL = counted || '/' || NEW.max_active;
            END IF;
            IF NEW.runs_per_day > 0 THEN
                counted := (SELECT count(*) FROM executions e
                            WHERE e.workspace_id = NEW.workspace_id AND e.created_at >= NEW.since);
                IF counted > NEW.runs_per_day THEN
                    RAISE EXCEPTION 'the workspace started too many executions today'
                        USING ERRCODE = 'SA430', DETAIL = counted || '/' || NEW.runs_per_day;
                END IF;
            END IF;
            DELETE FROM start_admissions WHERE execution_id = NEW.execution_id;
            RETURN NULL;
        END
        $$ LANGUAGE plpgsql VOLATILE
        """
    )
    op.execute("DROP TRIGGER IF EXISTS start_admitted ON start_admissions")
    op.execute(
        """
        CREATE CONSTRAINT TRIGGER start_admitted AFTER INSERT ON start_admissions
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sous_admit_at_commit()
        """
    )
    # sous_admit_start (0007) stays while the previous release, which calls it, may still serve.


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS start_admissions")
    op.execute("DROP FUNCTION IF EXISTS sous_admit_at_commit()")
