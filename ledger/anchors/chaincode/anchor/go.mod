module github.com/appliance/ledger/anchors/chaincode/anchor

go 1.22

require (
	github.com/hyperledger/fabric-chaincode-go/v2 v2.0.0
	github.com/hyperledger/fabric-contract-api-go/v2 v2.2.0
)
