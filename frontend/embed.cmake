# Turns frontend/prelude.nn into a C string (nncc_prelude_source) so the
# prelude ships inside the binary. Run by CMake at build time.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT} "/* generated from frontend/prelude.nn - do not edit */\n"
  "const char nncc_prelude_source[] = {${bytes} 0x00};\n")
