-- The schema of a freshly migrated database (migrate() with the default table), as
-- pg_dump --schema-only --no-owner prints it without comments, SET lines and version lines.
-- Written by CW_WRITE_SCHEMA=1 npx vitest run test/store/schema-dump.test.ts; the test fails when it differs.

CREATE FUNCTION public.task_runner_requests_cw_notify() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
      IF EXISTS (SELECT 1 FROM cw_new_rows WHERE pid IS NULL AND completed_at IS NULL) THEN
        PERFORM pg_notify('cw_task_runner_task_runner_requests', '');
        IF TG_OP = 'UPDATE' THEN
          PERFORM pg_notify('cw_task_runner_task_runner_requests', 'rescheduled:' || wiped.launcher_id)
          FROM (SELECT DISTINCT launcher_id FROM cw_new_rows
                WHERE pid IS NULL AND completed_at IS NULL AND launcher_id IS NOT NULL AND lease_expires_at > now()) AS wiped;
        END IF;
      END IF;
      RETURN NULL;
    END
    $$;

CREATE TABLE public.task_runner_requests (
    id bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    task_class_name text NOT NULL,
    pid integer,
    started_at timestamp with time zone,
    completed_at timestamp with time zone,
    result text,
    tries integer DEFAULT 0 NOT NULL,
    try_limit integer DEFAULT 5 NOT NULL,
    options text,
    delay_until timestamp with time zone,
    result_text text,
    queue text DEFAULT 'default'::text NOT NULL,
    priority integer DEFAULT 0 NOT NULL,
    host text,
    launcher_id text,
    process_identity text,
    thread_id integer,
    lease_expires_at timestamp with time zone,
    crashes integer DEFAULT 0 NOT NULL,
    timeout_ms integer,
    cancel_requested_at timestamp with time zone,
    traceparent text,
    unique_key text
);

CREATE TABLE public.task_runner_requests_attempts (
    id bigint NOT NULL,
    request_id bigint NOT NULL,
    try integer NOT NULL,
    host text,
    launcher_id text,
    pid integer,
    thread_id integer,
    mode text,
    started_at timestamp with time zone,
    ended_at timestamp with time zone DEFAULT now() NOT NULL,
    result text NOT NULL,
    exit_code integer,
    signal text,
    peak_memory_bytes bigint,
    result_text text
);

COMMENT ON TABLE public.task_runner_requests_attempts IS 'cw-task-runner: attempt history; the runner created the request table';

CREATE SEQUENCE public.task_runner_requests_attempts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.task_runner_requests_attempts_id_seq OWNED BY public.task_runner_requests_attempts.id;

CREATE SEQUENCE public.task_runner_requests_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.task_runner_requests_id_seq OWNED BY public.task_runner_requests.id;

CREATE TABLE public.task_runner_requests_launchers (
    launcher_id text NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    concurrency integer NOT NULL,
    queues text[],
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    heartbeat_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.task_runner_requests_recurring (
    name text NOT NULL,
    task_class_name text NOT NULL,
    cron text NOT NULL,
    timezone text NOT NULL,
    options text,
    queue text NOT NULL,
    priority integer NOT NULL,
    try_limit integer NOT NULL,
    backfill integer DEFAULT 0 NOT NULL,
    last_due_at timestamp with time zone NOT NULL,
    last_request_id bigint,
    registered_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY public.task_runner_requests ALTER COLUMN id SET DEFAULT nextval('public.task_runner_requests_id_seq'::regclass);

ALTER TABLE ONLY public.task_runner_requests_attempts ALTER COLUMN id SET DEFAULT nextval('public.task_runner_requests_attempts_id_seq'::regclass);

ALTER TABLE ONLY public.task_runner_requests_attempts
    ADD CONSTRAINT task_runner_requests_attempts_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.task_runner_requests_launchers
    ADD CONSTRAINT task_runner_requests_launchers_pkey PRIMARY KEY (launcher_id);

ALTER TABLE ONLY public.task_runner_requests
    ADD CONSTRAINT task_runner_requests_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.task_runner_requests_recurring
    ADD CONSTRAINT task_runner_requests_recurring_pkey PRIMARY KEY (name);

CREATE INDEX task_runner_requests_attempts_ended_idx ON public.task_runner_requests_attempts USING btree (ended_at);

CREATE INDEX task_runner_requests_attempts_request_idx ON public.task_runner_requests_attempts USING btree (request_id, id);

CREATE INDEX task_runner_requests_ended_idx ON public.task_runner_requests USING btree (completed_at) WHERE (completed_at IS NOT NULL);

CREATE INDEX task_runner_requests_result_idx ON public.task_runner_requests USING btree (result, id) WHERE (completed_at IS NOT NULL);

CREATE INDEX task_runner_requests_runnable_idx ON public.task_runner_requests USING btree (priority DESC, id) WHERE ((completed_at IS NULL) AND (pid IS NULL));

CREATE INDEX task_runner_requests_running_idx ON public.task_runner_requests USING btree (host) WHERE (pid IS NOT NULL);

CREATE INDEX task_runner_requests_task_idx ON public.task_runner_requests USING btree ("left"(task_class_name, 200), id);

CREATE INDEX task_runner_requests_unique_key_idx ON public.task_runner_requests USING btree (unique_key) WHERE (unique_key IS NOT NULL);

CREATE INDEX task_runner_requests_wiped_idx ON public.task_runner_requests USING btree (launcher_id) WHERE ((pid IS NULL) AND (completed_at IS NULL) AND (lease_expires_at IS NOT NULL));

CREATE TRIGGER task_runner_requests_cw_insert_notify AFTER INSERT ON public.task_runner_requests REFERENCING NEW TABLE AS cw_new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.task_runner_requests_cw_notify();

CREATE TRIGGER task_runner_requests_cw_update_notify AFTER UPDATE ON public.task_runner_requests REFERENCING NEW TABLE AS cw_new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.task_runner_requests_cw_notify();
