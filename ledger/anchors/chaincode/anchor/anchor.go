// Command anchor is the appliance's anchor chaincode for Hyperledger Fabric.
//
// The node writes the (tree size, root) of its signed ledger checkpoints here so that
// it cannot later rewrite its own history unnoticed: once a size is on the channel,
// every peer holds it. Sizes must strictly grow, so a stale or replayed anchoring is
// refused. The first organisation to anchor becomes the owner; anchorings from any
// other MSP are refused after that (anchor once right after deployment).
//
// State keys: "latest" (decimal size), "owner" (MSP id), "size/<20-digit size>"
// (JSON AnchorRecord). Each anchoring emits an "Anchored" event with the record.
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"regexp"
	"strconv"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

const (
	latestKey = "latest"
	ownerKey  = "owner"
	eventName = "Anchored"
)

var rootPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// AnchorRecord is what the channel keeps for one anchored tree size.
type AnchorRecord struct {
	Size uint64 `json:"size"`
	Root string `json:"root"`
	Tx   string `json:"tx"`
}

// AnchorContract holds anchored checkpoints: Anchor, RootOf, LatestSize.
type AnchorContract struct {
	contractapi.Contract
}

func sizeKey(size uint64) string {
	return fmt.Sprintf("size/%020d", size)
}

func latest(ctx contractapi.TransactionContextInterface) (uint64, error) {
	raw, err := ctx.GetStub().GetState(latestKey)
	if err != nil {
		return 0, fmt.Errorf("failed to read the latest size: %v", err)
	}
	if raw == nil {
		return 0, nil
	}
	size, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stored latest size %q is not a number: %v", raw, err)
	}
	return size, nil
}

// Anchor records root (64 lowercase hex characters) for size, which must exceed every size anchored before.
func (c *AnchorContract) Anchor(ctx contractapi.TransactionContextInterface, size uint64, root string) error {
	if size == 0 {
		return fmt.Errorf("size must be positive")
	}
	if !rootPattern.MatchString(root) {
		return fmt.Errorf("root must be 64 lowercase hex characters (a SHA-256 Merkle root)")
	}
	msp, err := ctx.GetClientIdentity().GetMSPID()
	if err != nil {
		return fmt.Errorf("failed to read the submitter's MSP id: %v", err)
	}
	owner, err := ctx.GetStub().GetState(ownerKey)
	if err != nil {
		return fmt.Errorf("failed to read the owner: %v", err)
	}
	if owner != nil && string(owner) != msp {
		return fmt.Errorf("only %s may anchor on this chaincode, not %s", owner, msp)
	}
	last, err := latest(ctx)
	if err != nil {
		return err
	}
	if size <= last {
		return fmt.Errorf("size must grow: %d is not above the latest anchored size %d", size, last)
	}
	record, err := json.Marshal(AnchorRecord{Size: size, Root: root, Tx: ctx.GetStub().GetTxID()})
	if err != nil {
		return err
	}
	if owner == nil {
		if err := ctx.GetStub().PutState(ownerKey, []byte(msp)); err != nil {
			return fmt.Errorf("failed to record the owner: %v", err)
		}
	}
	if err := ctx.GetStub().PutState(sizeKey(size), record); err != nil {
		return fmt.Errorf("failed to record size %d: %v", size, err)
	}
	if err := ctx.GetStub().PutState(latestKey, []byte(strconv.FormatUint(size, 10))); err != nil {
		return fmt.Errorf("failed to record the latest size: %v", err)
	}
	return ctx.GetStub().SetEvent(eventName, record)
}

// RootOf returns the JSON AnchorRecord stored for size, or an empty string if that size was never anchored.
func (c *AnchorContract) RootOf(ctx contractapi.TransactionContextInterface, size uint64) (string, error) {
	raw, err := ctx.GetStub().GetState(sizeKey(size))
	if err != nil {
		return "", fmt.Errorf("failed to read size %d: %v", size, err)
	}
	return string(raw), nil
}

// LatestSize returns the largest size anchored so far (0 if none).
func (c *AnchorContract) LatestSize(ctx contractapi.TransactionContextInterface) (uint64, error) {
	return latest(ctx)
}

func main() {
	chaincode, err := contractapi.NewChaincode(&AnchorContract{})
	if err != nil {
		log.Panicf("failed to create the anchor chaincode: %v", err)
	}
	if err := chaincode.Start(); err != nil {
		log.Panicf("failed to start the anchor chaincode: %v", err)
	}
}
