-- GET /v1/customers/<id> with an agent key: one masked read and one record.read ledger entry each.
dofile("wrk_common.lua")

function request()
  return wrk.format("GET", "/v1/customers/" .. next_id())
end
