-- What every load script shares: the API key, the customer ids, a distinct start per wrk thread.
-- Environment: BENCH_TOKEN (an agent key), BENCH_FIRST_ID and BENCH_IDS (the demo customers' id range).
dofile("wrk_report.lua")

local token = assert(os.getenv("BENCH_TOKEN"), "set BENCH_TOKEN to an agent API key")
first_id = tonumber(os.getenv("BENCH_FIRST_ID") or "1")
id_count = tonumber(os.getenv("BENCH_IDS") or "3000")
wrk.headers["Authorization"] = "Bearer " .. token

local started = 0
function setup(thread)
  thread:set("n", started * 1000003)
  started = started + 1
end

-- The next customer id: a stride by a prime walks every id before repeating, and threads start apart.
function next_id()
  n = n + 1
  return first_id + (n * 7919) % id_count
end

-- Reply checks: allowed, blocked and rewritten replies across regions and industries (JSON bodies).
replies = {
  '{"text":"最近我们更新了服务条款，请查收","region":"CN","industry":"retail","channel":"chat"}',
  '{"text":"我们是国家级品牌","region":"CN","industry":"retail","channel":"chat"}',
  '{"text":"保本保息，放心买","region":"CN","industry":"finance","channel":"chat"}',
  '{"text":"Your parcel ships today; guaranteed delivery by Friday.","region":"US","industry":"retail",'
    .. '"channel":"email"}',
  '{"text":"This fund offers a guaranteed 10% return","region":"US-CA","industry":"finance","channel":"chat"}',
  '{"text":"您好，您的账单已经出账，请在到期日前还款，谢谢","region":"CN","industry":"finance","channel":"sms"}',
}
