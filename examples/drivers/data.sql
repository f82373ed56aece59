-- The drivers example: two batch tables, filled with a week of hourly data ending now,
-- so a quickstart's lookups find fresh values. Deterministic (setseed) apart from "now".
-- Run with: psql "$DATABASE_URL" -f examples/drivers/data.sql   (or: npx larder demo)
SELECT setseed(0.42);

DROP TABLE IF EXISTS public.driver_stats;
CREATE TABLE public.driver_stats (
  driver_id       bigint      NOT NULL,
  event_timestamp timestamptz NOT NULL,
  created         timestamptz,
  conv_rate       real,
  acc_rate        real,
  avg_daily_trips bigint
);

-- 50 drivers (1001..1050) x 168 hours = 8,400 rows
INSERT INTO public.driver_stats (driver_id, event_timestamp, created, conv_rate, acc_rate, avg_daily_trips)
SELECT 1001 + d,
       date_trunc('hour', now()) - make_interval(hours => h),
       -- written two minutes after the hour it describes, never in the future
       least(date_trunc('hour', now()) - make_interval(hours => h) + interval '2 minutes', now()),
       round(random()::numeric, 4)::real,
       round(random()::numeric, 4)::real,
       (random() * 1000)::bigint
FROM generate_series(0, 49) AS d, generate_series(0, 167) AS h;

CREATE INDEX driver_stats_key_ts ON public.driver_stats (driver_id, event_timestamp);

DROP TABLE IF EXISTS public.customer_profile;
CREATE TABLE public.customer_profile (
  customer_id         text        NOT NULL,
  event_timestamp     timestamptz NOT NULL,
  current_balance     real,
  avg_passenger_count real,
  lifetime_trip_count bigint
);

-- 20 customers x one row a day for a week = 140 rows
INSERT INTO public.customer_profile
SELECT 'C' || (100 + c),
       date_trunc('day', now()) - make_interval(days => d),
       round((random() * 500)::numeric, 2)::real,
       round((1 + random() * 3)::numeric, 2)::real,
       (random() * 5000)::bigint
FROM generate_series(0, 19) AS c, generate_series(0, 6) AS d;

CREATE INDEX customer_profile_key_ts ON public.customer_profile (customer_id, event_timestamp);
