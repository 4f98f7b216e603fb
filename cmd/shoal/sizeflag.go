package main

import "github.com/shoalnet/shoal/node"

// sizeFlag is a flag holding a byte count (or, with rate, bytes per
// second) written the way people write them: 50GiB, 10MB/s, 1048576. See
// node.ParseSize. It is a pflag.Value; it records whether it was given, so an absent flag
// leaves the config's value alone.
type sizeFlag struct {
	n    int64
	set  bool
	rate bool
}

// Set parses v; pflag names the flag and the value in the error.
func (f *sizeFlag) Set(v string) error {
	parse := node.ParseSize
	if f.rate {
		parse = node.ParseRate
	}
	n, err := parse(v)
	if err != nil {
		return err
	}
	f.n, f.set = n, true
	return nil
}

// String is the value given, "" when none was (so help prints no
// misleading default; the usage text says what applies).
func (f *sizeFlag) String() string {
	if !f.set {
		return ""
	}
	s := node.FormatSize(f.n)
	if f.rate {
		s += "/s"
	}
	return s
}

func (f *sizeFlag) Type() string {
	if f.rate {
		return "rate"
	}
	return "size"
}
