package api

// InputError is bad operator input: it names the field (as the flag is
// spelled), where the value came from, and the fix.
type InputError struct {
	Field  string // "--advertise"
	Source string // "flag", "VCPE_ADVERTISE", "config file x.yaml"
	Msg    string
}

func (e *InputError) Error() string {
	src := ""
	if e.Source != "" && e.Source != "flag" {
		src = " (from " + e.Source + ")"
	}
	return e.Field + src + ": " + e.Msg
}
