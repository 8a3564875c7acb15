-- The site-wide event totals count what the dashboards count elsewhere: the events of browsers the
-- receiver flagged as bots are stored (visitor_events.is_bot) but make no session or visitor, and
-- are now left out of the totals too. An event is never updated, so its flag at insert is final.
-- Trigger bodies are E'' strings with \073 for each semicolon, as in the migrations before.
CREATE OR REPLACE FUNCTION analytics_count_events() RETURNS trigger LANGUAGE plpgsql AS E'BEGIN
	IF current_setting(''crm.retention'', true) = ''on'' THEN
		RETURN NULL\073
	END IF\073
	INSERT INTO analytics_event_counts (site_id, hour, events)
	SELECT site_id, date_trunc(''hour'', occurred_at, ''UTC''), CASE WHEN TG_OP = ''DELETE'' THEN -count(*) ELSE count(*) END
	FROM changed_events WHERE NOT is_bot GROUP BY 1, 2\073
	RETURN NULL\073
END'
;

-- The bots' events stored now leave the totals. Totals of events the retention job has deleted are
-- kept (all time), so they are not recounted from visitor_events.
INSERT INTO analytics_event_counts (site_id, hour, events)
SELECT site_id, date_trunc('hour', occurred_at, 'UTC'), -count(*) FROM visitor_events WHERE is_bot GROUP BY 1, 2;
