// The uploads bucket: its name and the lifecycle of what browsers upload to it (keys
// uploadsBucket and uploadsLifecycle), and how any bucket name is checked. The browser origins
// allowed to upload are in network.go, with the domain.

package config

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Uploads configures the S3 bucket that receives uploads through pre-signed URLs.
type Uploads struct {
	// BucketName is the bucket's globally unique name.
	BucketName string
	// TransitionDays is how old an object is before it moves to TransitionStorageClass.
	TransitionDays int `json:"transitionDays"`
	// TransitionStorageClass is the storage class objects move to (GLACIER in the design record).
	TransitionStorageClass string `json:"transitionStorageClass"`
	// ExpirationDays deletes objects this old; 0 keeps them for ever.
	ExpirationDays int `json:"expirationDays"`
}

// TransitionClasses are the S3 storage classes a lifecycle transition may target.
var TransitionClasses = []string{"STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"}

// MinIADays is the fewest days S3 accepts before a lifecycle transition to STANDARD_IA or
// ONEZONE_IA.
const MinIADays = 30

// infrequentAccessClasses are the transition targets bound by MinIADays.
var infrequentAccessClasses = []string{"STANDARD_IA", "ONEZONE_IA"}

var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// bucket reads a bucket name key, def when it is not set, and reports whether the name is one S3
// accepts, refusing it otherwise.
func (p *parser) bucket(key, def string) (string, bool) {
	name := p.str(key, def, false)
	if !bucketRE.MatchString(name) || strings.Contains(name, "..") {
		p.fail(qualify(key), strconv.Quote(name), "an S3 bucket name: 3-63 lower-case letters, digits, dots and dashes")
		return name, false
	}
	return name, true
}

// uploads reads the uploads bucket's name, by default derived from the cluster id, and its
// lifecycle, by default GLACIER after 30 days and kept for ever.
func (p *parser) uploads(c *Config) {
	c.Uploads = Uploads{TransitionDays: 30, TransitionStorageClass: "GLACIER"}
	c.Uploads.BucketName, _ = p.bucket("uploadsBucket", c.ClusterID()+"-images")
	key := qualify("uploadsLifecycle")
	p.object("uploadsLifecycle", &c.Uploads, false)
	if c.Uploads.TransitionDays < 1 {
		p.fail(key+".transitionDays", strconv.Itoa(c.Uploads.TransitionDays), "1 or more days")
	}
	if !slices.Contains(TransitionClasses, c.Uploads.TransitionStorageClass) {
		p.fail(key+".transitionStorageClass", strconv.Quote(c.Uploads.TransitionStorageClass), "one of "+strings.Join(TransitionClasses, ", "))
	} else if d := c.Uploads.TransitionDays; d >= 1 && d < MinIADays && slices.Contains(infrequentAccessClasses, c.Uploads.TransitionStorageClass) {
		// S3 refuses the whole lifecycle configuration (PutBucketLifecycleConfiguration) when an
		// object would move to an infrequent-access class before 30 days: the deploy would fail
		// on the bucket, after the rest of the stack changed.
		p.fail(key+".transitionDays", strconv.Itoa(d), fmt.Sprintf(
			"%d or more days for a transition to %s (S3's minimum for the infrequent-access classes), or another transitionStorageClass",
			MinIADays, c.Uploads.TransitionStorageClass))
	}
	if e := c.Uploads.ExpirationDays; e != 0 && e <= c.Uploads.TransitionDays {
		p.fail(key+".expirationDays", strconv.Itoa(e), fmt.Sprintf("0 (keep for ever) or more than transitionDays (%d)", c.Uploads.TransitionDays))
	}
}
