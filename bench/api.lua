-- wrk script for bench/api.py: one kind of request against our server or the bare app (same paths).
--
--   wrk -t1 -c16 -d5s --timeout 10s -s bench/api.lua URL -- KIND TOKEN LIST
--
-- KIND is raise, get, acknowledge or escalate. LIST is a file prefix: thread N reads LIST.N, one request
-- target a line ("<dispute id>" or "<dispute id> <expected version>"), and walks it in order ("-": none,
-- for raise). A list that runs out starts again, and the requests after that are counted as `reused`: fine
-- for GET and for acknowledge (allowed again on an acknowledged dispute), but an escalate would be aimed at
-- a stale version and refused, so bench/api.py sizes the escalate lists to outlast the run.
-- At the end it prints one line, "WRK-RESULT {json}", which bench/api.py reads.

local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

local RAISE_BODY = '{"child_ref":"LCS-204816","case_type":"looked_after","categories":["permanency_delay"],'
   .. '"summary":"Permanence plan not progressed since the last review.",'
   .. '"team_manager_email":"tm@example.gov.uk"}'
local ESCALATE_REASON = "Not satisfied: no date for the final hearing."

function init(args)
   kind = args[1]
   headers = { ["Authorization"] = "Bearer " .. args[2], ["Content-Type"] = "application/json" }
   targets = {}
   if args[3] ~= "-" then
      for line in io.lines(args[3] .. "." .. tid) do
         local id, version = line:match("^(%S+)%s*(%S*)$")
         table.insert(targets, { id, version })
      end
   end
   position, around, reused, non2xx, first_refusal = 0, false, 0, 0, ""
end

local function next_target()
   position = position + 1
   if position > #targets then
      position = 1
      around = true
   end
   if around then
      reused = reused + 1
   end
   return targets[position]
end

function request()
   if kind == "raise" then
      return wrk.format("POST", "/api/v1/disputes", headers, RAISE_BODY)
   end
   local target = next_target()
   local path = "/api/v1/disputes/" .. target[1]
   if kind == "get" then
      return wrk.format("GET", path, headers)
   elseif kind == "acknowledge" then
      return wrk.format("POST", path .. "/actions/acknowledge", headers, "{}")
   end
   local body = string.format('{"reason":"%s","expected_version":%s}', ESCALATE_REASON, target[2])
   return wrk.format("POST", path .. "/actions/escalate", headers, body)
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      if first_refusal == "" then
         first_refusal = status .. " " .. string.sub(body or "", 1, 200)
      end
   end
end

local function quoted(text)
   return '"' .. text:gsub('\\', '\\\\'):gsub('"', '\\"'):gsub("%c", " ") .. '"'
end

function done(summary, latency, requests)
   local non2xx_total, reused_total, refusal = 0, 0, ""
   for _, thread in ipairs(threads) do
      non2xx_total = non2xx_total + thread:get("non2xx")
      reused_total = reused_total + thread:get("reused")
      if refusal == "" then
         refusal = thread:get("first_refusal")
      end
   end
   local e = summary.errors
   io.write(string.format(
      'WRK-RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,'
         .. '"write_errors":%d,"status_errors":%d,"timeouts":%d,"non2xx":%d,"reused":%d,'
         .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,"first_refusal":%s}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
      non2xx_total, reused_total, latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean, quoted(refusal)
   ))
end
