-- wrk script for bench/receiver.bench.ts: each request is a batch of EVENTS new UUIDv7 events,
-- named by its x-request-id ("<thread>-<counter>"), from which the bench derives the event ids.
-- The receiver echoes x-request-id; the ids of the batches answered 202 are written to ACK_FILE,
-- so the bench can check afterwards that every acknowledged event is in Postgres.
-- "acked" is global so that done() can read it from each thread.
-- Pacing (RATE > 0): each thread hands out send slots RATE/threads per second apart.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *ts);
]]

local SITE = os.getenv("BENCH_SITE") or "bench"
local EVENTS = tonumber(os.getenv("BENCH_EVENTS") or "5")
local RUN = tonumber(os.getenv("BENCH_RUN") or "0")
local START_MS = tonumber(os.getenv("BENCH_START_MS") or "1767225600000")
local RATE = tonumber(os.getenv("BENCH_RATE") or "0")
local ACK_FILE = os.getenv("BENCH_ACK_FILE")
local THREADS = tonumber(os.getenv("BENCH_THREADS") or "1")

local HEADERS = {
	["content-type"] = "text/plain",
	["user-agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
}

local threads = {}
local next_thread = 0

function setup(thread)
	thread:set("thread_id", next_thread)
	next_thread = next_thread + 1
	table.insert(threads, thread)
end

local counter = 0
acked = {}
local interval_ms = 0
local next_slot = 0
local now_ts = ffi.new("bench_timespec")

local function now_ms()
	ffi.C.clock_gettime(1, now_ts)
	return tonumber(now_ts.tv_sec) * 1000 + tonumber(now_ts.tv_nsec) / 1e6
end

local ts_high = string.format("%08x", math.floor(START_MS / 65536))
local ts_mid = string.format("%04x", START_MS % 65536)

-- Must match eventId() in receiver.bench.ts.
local function event_id(request, index)
	local n = request * 64 + index
	return string.format("%s-%s-7%03x-%04x-%06x%06x", ts_high, ts_mid, thread_id, 0x8000 + RUN, math.floor(n / 16777216), n % 16777216)
end

function init()
	if RATE > 0 then
		interval_ms = 1000 * THREADS / RATE
		next_slot = now_ms()
	end
end

function delay()
	if RATE == 0 then
		return 0
	end
	local now = now_ms()
	if next_slot < now then
		next_slot = now
	end
	local wait = next_slot - now
	next_slot = next_slot + interval_ms
	return math.floor(wait)
end

function request()
	counter = counter + 1
	local events = {}
	for i = 1, EVENTS do
		events[i] = string.format(
			'{"id":"%s","type":"pageview","ts":%d,"anonymousId":"bench-%d-%d","sessionId":"bench-%d-%d-s","url":"https://bench.example/page/%d","title":"Bench page"}',
			event_id(counter, i), START_MS + i, thread_id, counter % 10000, thread_id, counter % 10000, i)
	end
	local body = string.format('{"site":"%s","events":[%s]}', SITE, table.concat(events, ","))
	HEADERS["x-request-id"] = string.format("%d-%d", thread_id, counter)
	return wrk.format("POST", nil, HEADERS, body)
end

function response(status, headers, body)
	if status == 202 then
		local id = headers["x-request-id"]
		if id then
			acked[#acked + 1] = id
		end
	end
end

function done(summary, latency, requests)
	local lines = {}
	for _, thread in ipairs(threads) do
		local list = thread:get("acked")
		for _, id in ipairs(list) do
			lines[#lines + 1] = id
		end
	end
	if ACK_FILE then
		local file = assert(io.open(ACK_FILE, "w"))
		file:write(table.concat(lines, "\n"))
		file:close()
	end
	io.write(string.format("BENCH_JSON {\"requests\":%d,\"duration_us\":%d,\"errors\":%d,\"non2xx\":%d,\"p50_us\":%d,\"p99_us\":%d,\"acked\":%d}\n",
		summary.requests, summary.duration,
		summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, summary.errors.status,
		latency:percentile(50), latency:percentile(99), #lines))
end
