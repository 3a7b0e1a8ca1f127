-- The projection of device-events and governance, created in a schema named by the projector
-- (`projection` live, `projection_rebuild` during a rebuild). Every row derives only from events,
-- never from the wall clock, so a rebuild from offset 0 yields identical tables.

CREATE TABLE IF NOT EXISTS {schema}.consumer_offsets (
    topic        text NOT NULL,
    partition    integer NOT NULL,
    next_offset  bigint NOT NULL,
    PRIMARY KEY (topic, partition)
);

CREATE TABLE IF NOT EXISTS {schema}.devices (
    id            text PRIMARY KEY,
    plugin_id     text NOT NULL,
    external_id   text NOT NULL,
    name          text NOT NULL,
    device_class  text NOT NULL,
    manufacturer  text,
    model         text,
    firmware      text,
    capabilities  text[] NOT NULL,
    actions       text[] NOT NULL,
    online        boolean NOT NULL DEFAULT true,
    removed       boolean NOT NULL DEFAULT false,
    updated_at    timestamptz NOT NULL,
    event_offset  bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS devices_plugin ON {schema}.devices (plugin_id, id);
CREATE INDEX IF NOT EXISTS devices_class ON {schema}.devices (device_class, id);

CREATE TABLE IF NOT EXISTS {schema}.device_state (
    device_id     text NOT NULL,
    capability    text NOT NULL,
    value         jsonb NOT NULL,
    observed_at   timestamptz NOT NULL,
    event_offset  bigint NOT NULL,
    PRIMARY KEY (device_id, capability)
);

CREATE TABLE IF NOT EXISTS {schema}.state_history (
    device_id     text NOT NULL,
    capability    text NOT NULL,
    observed_at   timestamptz NOT NULL,
    event_id      text NOT NULL,
    value         jsonb NOT NULL,
    num           double precision,
    PRIMARY KEY (device_id, capability, observed_at, event_id)
);

CREATE TABLE IF NOT EXISTS {schema}.actions (
    action_id     text PRIMARY KEY,
    device_id     text NOT NULL,
    action        text NOT NULL,
    status        text NOT NULL,
    detail        text,
    updated_at    timestamptz NOT NULL,
    event_offset  bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_device ON {schema}.actions (device_id, updated_at);

CREATE TABLE IF NOT EXISTS {schema}.plugins (
    id            text PRIMARY KEY,
    version       text NOT NULL,
    state         text NOT NULL,
    detail        text,
    restarts      integer NOT NULL,
    accepted      bigint NOT NULL,
    rejected      bigint NOT NULL,
    violations    jsonb NOT NULL,
    updated_at    timestamptz NOT NULL,
    event_offset  bigint NOT NULL
);
