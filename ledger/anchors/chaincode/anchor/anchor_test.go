package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/cid"
	"github.com/hyperledger/fabric-chaincode-go/v2/shim"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

// fakeStub keeps state in a map; only the methods the chaincode calls are implemented.
type fakeStub struct {
	shim.ChaincodeStubInterface
	state  map[string][]byte
	txID   string
	events []string
}

func (s *fakeStub) GetTxID() string                         { return s.txID }
func (s *fakeStub) GetState(key string) ([]byte, error)     { return s.state[key], nil }
func (s *fakeStub) PutState(key string, value []byte) error { s.state[key] = value; return nil }
func (s *fakeStub) SetEvent(name string, payload []byte) error {
	s.events = append(s.events, name+" "+string(payload))
	return nil
}

type fakeIdentity struct {
	cid.ClientIdentity
	msp string
}

func (i *fakeIdentity) GetMSPID() (string, error) { return i.msp, nil }

type fakeContext struct {
	contractapi.TransactionContextInterface
	stub     *fakeStub
	identity *fakeIdentity
}

func (c *fakeContext) GetStub() shim.ChaincodeStubInterface  { return c.stub }
func (c *fakeContext) GetClientIdentity() cid.ClientIdentity { return c.identity }

func newContext(stub *fakeStub, tx, msp string) *fakeContext {
	stub.txID = tx
	return &fakeContext{stub: stub, identity: &fakeIdentity{msp: msp}}
}

const rootA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestAnchorGrowsAndReadsBack(t *testing.T) {
	cc, stub := &AnchorContract{}, &fakeStub{state: map[string][]byte{}}
	if err := cc.Anchor(newContext(stub, "tx1", "Org1MSP"), 5, rootA); err != nil {
		t.Fatal(err)
	}
	latest, err := cc.LatestSize(newContext(stub, "tx2", "Org1MSP"))
	if err != nil || latest != 5 {
		t.Fatalf("latest = %d, %v", latest, err)
	}
	raw, err := cc.RootOf(newContext(stub, "tx3", "Org1MSP"), 5)
	var rec AnchorRecord
	if err != nil || json.Unmarshal([]byte(raw), &rec) != nil || rec != (AnchorRecord{5, rootA, "tx1"}) {
		t.Fatalf("RootOf(5) = %q, %v", raw, err)
	}
	if raw, _ := cc.RootOf(newContext(stub, "tx4", "Org1MSP"), 4); raw != "" {
		t.Fatalf("RootOf(4) = %q, want empty", raw)
	}
	if len(stub.events) != 1 || !strings.HasPrefix(stub.events[0], "Anchored ") {
		t.Fatalf("events = %v", stub.events)
	}
}

func TestAnchorRefusals(t *testing.T) {
	cc, stub := &AnchorContract{}, &fakeStub{state: map[string][]byte{}}
	if err := cc.Anchor(newContext(stub, "tx1", "Org1MSP"), 5, rootA); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		size uint64
		root string
		msp  string
		want string
	}{
		{5, rootA, "Org1MSP", "size must grow"},
		{4, rootA, "Org1MSP", "size must grow"},
		{0, rootA, "Org1MSP", "size must be positive"},
		{6, strings.ToUpper(rootA), "Org1MSP", "64 lowercase hex"},
		{6, rootA[:10], "Org1MSP", "64 lowercase hex"},
		{6, rootA, "Org2MSP", "only Org1MSP may anchor"},
	}
	for _, c := range cases {
		err := cc.Anchor(newContext(stub, "txN", c.msp), c.size, c.root)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Anchor(%d, %q) by %s = %v, want %q", c.size, c.root, c.msp, err, c.want)
		}
	}
	if latest, _ := cc.LatestSize(newContext(stub, "txM", "Org1MSP")); latest != 5 {
		t.Fatalf("a refused anchoring changed the latest size to %d", latest)
	}
}
