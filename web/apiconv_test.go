package web

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/shoalnet/shoal/node"
)

// TestAPIConvJSON: each node type and its api conversion encode to the
// same JSON, field for field, when every field is set; and a nil list
// stays null as the node's own encoding has it.
func TestAPIConvJSON(t *testing.T) {
	filled := func(p any) any {
		seed := 0
		fill(reflect.ValueOf(p).Elem(), &seed)
		return reflect.ValueOf(p).Elem().Interface()
	}
	var (
		info node.Info
		peer node.PeerInfo
		root node.RootInfo
		tr   node.TransferInfo
		gc   node.GCResult
		rep  node.VerifyReport
	)
	cases := []struct {
		name      string
		node, api any
	}{
		{"Info", filled(&info), nil},
		{"PeerInfo", filled(&peer), nil},
		{"RootInfo", filled(&root), nil},
		{"TransferInfo", filled(&tr), nil},
		{"GCResult", filled(&gc), nil},
		{"VerifyReport", filled(&rep), nil},
		{"empty TransferInfo", node.TransferInfo{}, apiTransfer(node.TransferInfo{})},
		{"empty VerifyReport", node.VerifyReport{}, apiVerifyReport(node.VerifyReport{})},
	}
	cases[0].api, cases[1].api, cases[2].api = apiInfo(info), apiPeer(peer), apiRoot(root)
	cases[3].api, cases[4].api, cases[5].api = apiTransfer(tr), apiGC(gc), apiVerifyReport(rep)
	for _, c := range cases {
		want, err := json.Marshal(c.node)
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(c.api)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s: api encodes\n%s\nnode encodes\n%s", c.name, got, want)
		}
	}
}
