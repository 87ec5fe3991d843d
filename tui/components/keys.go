package components

import "charm.land/bubbles/v2/key"

// KeyMap is every key binding of the wizard. Pages show the subset that
// applies to them as help.
type KeyMap struct {
	Continue key.Binding
	Rerun    key.Binding
	Abort    key.Binding
	Accept   key.Binding
	Decline  key.Binding
	Up       key.Binding
	Down     key.Binding
	PageUp   key.Binding
	PageDown key.Binding
	Quit     key.Binding
	Yes      key.Binding
	No       key.Binding
}
