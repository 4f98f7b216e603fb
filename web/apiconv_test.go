package web

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/shoalnet/shoal/node"
)

// fill sets every field of the struct v points to, recursively, to a
// value that is not zero, so a field the conversion forgets shows.
func fill(v reflect.Value, seed *int) {
	*seed++
	switch v.Kind() {
	case reflect.String:
		v.SetString("s" + string(rune('a'+*seed%26)))
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(*seed))
	case reflect.Uint64:
		v.SetUint(uint64(*seed))
	case reflect.Float64:
		v.SetFloat(float64(*seed) + 0.5)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), seed)
		}
		v.Set(s)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Unix(int64(1_700_000_000+*seed), 0).UTC()))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), seed)
			}
		}
	}
}

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
