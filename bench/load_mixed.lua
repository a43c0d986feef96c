-- The soak: masked reads and reply checks in turn (each appends one ledger entry).
dofile("wrk_common.lua")

-- wrk.format uses the headers it is given instead of wrk.headers, so the POSTs carry a copy.
local json_headers = {["Content-Type"] = "application/json"}
for name, value in pairs(wrk.headers) do
  json_headers[name] = value
end

function request()
  local i = next_id()
  if i % 2 == 0 then
    return wrk.format("GET", "/v1/customers/" .. i)
  end
  return wrk.format("POST", "/v1/policy/check-reply", json_headers, replies[i % #replies + 1])
end
