package probe

import "strings"

// languageNames maps ISO 639-1 and ISO 639-2 (bibliographic and
// terminology) codes, as containers tag tracks, to English names for the
// players' menus. Codes not listed are shown as they are.
var languageNames = map[string]string{
	"en": "English", "eng": "English",
	"fr": "French", "fre": "French", "fra": "French",
	"de": "German", "ger": "German", "deu": "German",
	"es": "Spanish", "spa": "Spanish",
	"it": "Italian", "ita": "Italian",
	"pt": "Portuguese", "por": "Portuguese",
	"nl": "Dutch", "dut": "Dutch", "nld": "Dutch",
	"sv": "Swedish", "swe": "Swedish",
	"no": "Norwegian", "nor": "Norwegian",
	"nb": "Norwegian Bokmål", "nob": "Norwegian Bokmål",
	"da": "Danish", "dan": "Danish",
	"fi": "Finnish", "fin": "Finnish",
	"is": "Icelandic", "ice": "Icelandic", "isl": "Icelandic",
	"pl": "Polish", "pol": "Polish",
	"cs": "Czech", "cze": "Czech", "ces": "Czech",
	"sk": "Slovak", "slo": "Slovak", "slk": "Slovak",
	"hu": "Hungarian", "hun": "Hungarian",
	"ro": "Romanian", "rum": "Romanian", "ron": "Romanian",
	"bg": "Bulgarian", "bul": "Bulgarian",
	"el": "Greek", "gre": "Greek", "ell": "Greek",
	"ru": "Russian", "rus": "Russian",
	"uk": "Ukrainian", "ukr": "Ukrainian",
	"sr": "Serbian", "srp": "Serbian",
	"hr": "Croatian", "hrv": "Croatian",
	"sl": "Slovenian", "slv": "Slovenian",
	"et": "Estonian", "est": "Estonian",
	"lv": "Latvian", "lav": "Latvian",
	"lt": "Lithuanian", "lit": "Lithuanian",
	"tr": "Turkish", "tur": "Turkish",
	"ar": "Arabic", "ara": "Arabic",
	"he": "Hebrew", "heb": "Hebrew",
	"fa": "Persian", "per": "Persian", "fas": "Persian",
	"hi": "Hindi", "hin": "Hindi",
	"bn": "Bengali", "ben": "Bengali",
	"ta": "Tamil", "tam": "Tamil",
	"te": "Telugu", "tel": "Telugu",
	"th": "Thai", "tha": "Thai",
	"vi": "Vietnamese", "vie": "Vietnamese",
	"id": "Indonesian", "ind": "Indonesian",
	"ms": "Malay", "may": "Malay", "msa": "Malay",
	"zh": "Chinese", "chi": "Chinese", "zho": "Chinese",
	"ja": "Japanese", "jpn": "Japanese",
	"ko": "Korean", "kor": "Korean",
	"ca": "Catalan", "cat": "Catalan",
	"eu": "Basque", "baq": "Basque", "eus": "Basque",
	"gl": "Galician", "glg": "Galician",
	"ga": "Irish", "gle": "Irish",
	"cy": "Welsh", "wel": "Welsh", "cym": "Welsh",
	"la": "Latin", "lat": "Latin",
}

// LanguageName names a language tag such as "fr", "fre", "fra" or "pt-BR";
// "" for none or "und".
func LanguageName(tag string) string {
	if tag == "" || tag == "und" {
		return ""
	}
	base, region, _ := strings.Cut(tag, "-")
	name, ok := languageNames[strings.ToLower(base)]
	if !ok {
		return tag
	}
	if region != "" {
		return name + " (" + strings.ToUpper(region) + ")"
	}
	return name
}
