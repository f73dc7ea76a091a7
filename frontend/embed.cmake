# Turns a text file (the prelude, nncc.h) into a C string named NAME so
# it ships inside the binary. Run by CMake at build time.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT} "/* generated from ${IN} - do not edit */\n"
  "const char ${NAME}[] = {${bytes} 0x00};\n")
