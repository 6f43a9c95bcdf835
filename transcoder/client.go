package transcoder

import (
	"fmt"
	"strconv"
	"strings"
)

// Client is what one client says it can play: the master's filters. The
// zero value is a client that says nothing, and gets every variant.
type Client struct {
	// Codecs are prefixes of RFC 6381 codec names ("avc1", "hvc1",
	// "mp4a", "ac-3"); nil allows every codec.
	Codecs    []string
	MaxHeight int  // 0: any height
	SDR       bool // range=sdr: no PQ or HLG variant
	Channels  int  // 0: any number of audio channels
	TS        bool // container=ts
}

// allows says whether every codec of a CODECS value is in c.Codecs.
func (c Client) allows(codecs string) bool {
	if c.Codecs == nil {
		return true
	}
	for _, codec := range strings.Split(codecs, ",") {
		if !c.allowsOne(strings.TrimSpace(codec)) {
			return false
		}
	}
	return true
}

func (c Client) allowsOne(codec string) bool {
	for _, p := range c.Codecs {
		// A prefix names a whole codec ("hvc1") or a narrower one
		// ("avc1.64"); "mp4" must not allow "mp4a".
		if codec == p || strings.HasPrefix(codec, p) && (strings.HasSuffix(p, ".") || codec[len(p)] == '.') {
			return true
		}
	}
	return false
}

// declared says whether the client named its codecs: only then is a copy
// that not every player decodes (HEVC, AC-3) put first.
func (c Client) declared() bool { return c.Codecs != nil }

// Query is c as the master's query parameters, in a fixed order.
func (c Client) Query() string {
	var q []string
	if c.Codecs != nil {
		q = append(q, "codecs="+strings.Join(c.Codecs, ","))
	}
	if c.MaxHeight > 0 {
		q = append(q, "maxheight="+strconv.Itoa(c.MaxHeight))
	}
	if c.SDR {
		q = append(q, "range=sdr")
	}
	if c.Channels > 0 {
		q = append(q, "channels="+strconv.Itoa(c.Channels))
	}
	if c.TS {
		q = append(q, "container=ts")
	}
	return strings.Join(q, "&")
}

// asked describes c's filters for an error message.
func (c Client) asked() string {
	if q := c.Query(); q != "" {
		return q
	}
	return "no filter"
}

// Validate checks the values a client sent.
func (c Client) Validate() error {
	for _, p := range c.Codecs {
		if p == "" || strings.ContainsAny(p, " \",") {
			return fmt.Errorf("codec %q: codecs is a comma list of codec names such as avc1,hvc1,mp4a", p)
		}
	}
	if c.MaxHeight < 0 || c.Channels < 0 {
		return fmt.Errorf("maxheight and channels are positive numbers")
	}
	return nil
}
