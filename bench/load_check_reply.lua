-- POST /v1/policy/check-reply with an agent key: one policy decision and one reply.checked entry each.
dofile("wrk_common.lua")
wrk.headers["Content-Type"] = "application/json"

function request()
  local i = next_id()
  return wrk.format("POST", "/v1/policy/check-reply", nil, replies[i % #replies + 1])
end
