// Demo widgets: progressive enhancements for the demo forms.
