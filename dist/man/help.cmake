# cmake -DPROGRAM=path -DTITLE="SECTION TITLE" -DOUTPUT=file.md
#       [-DCOMMANDS=a;b;c] -P help.cmake
# Writes PROGRAM's --help text as a Markdown section (a verbatim block), then
# for each of COMMANDS a subsection with `PROGRAM help COMMAND`, so the man
# page says exactly what `PROGRAM --help` and `PROGRAM help COMMAND` say.
function(help_block out_var)
  execute_process(COMMAND ${PROGRAM} ${ARGN} OUTPUT_VARIABLE text RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    string(REPLACE ";" " " args "${ARGN}")
    message(FATAL_ERROR "${PROGRAM} ${args}: exit status ${status}")
  endif()
  string(REGEX REPLACE "\n$" "" text "${text}")
  string(REGEX REPLACE "\n" "\n    " text "${text}")
  set(${out_var} "    ${text}\n" PARENT_SCOPE)
endfunction()

help_block(text --help)
set(markdown "# ${TITLE}\n\nAs `--help` prints it:\n\n${text}")
foreach(command ${COMMANDS})
  help_block(text help ${command})
  string(APPEND markdown "\n## ${command}\n\n${text}")
endforeach()
file(WRITE ${OUTPUT} "${markdown}")
