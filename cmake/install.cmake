# Installation: headers, the library, an exported CMake package (find_package(xgrad) gives
# xgrad::xgrad) and a relocatable pkg-config file.
include(CMakePackageConfigHelpers)

set(XGRAD_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/xgrad)

install(TARGETS xgrad EXPORT xgradTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(EXPORT xgradTargets NAMESPACE xgrad:: DESTINATION ${XGRAD_CMAKE_DIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/xgradConfig.cmake.in
  ${PROJECT_BINARY_DIR}/xgradConfig.cmake
  INSTALL_DESTINATION ${XGRAD_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/xgradConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/xgradConfig.cmake ${PROJECT_BINARY_DIR}/xgradConfigVersion.cmake
  DESTINATION ${XGRAD_CMAKE_DIR})

# The .pc file finds the prefix from its own location, so `cmake --install --prefix` works.
file(RELATIVE_PATH XGRAD_PC_TO_PREFIX "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
# A static libxgrad built with OpenMP needs the OpenMP runtime in the consumer's link.
if(XGRAD_USES_OPENMP)
  set(XGRAD_PC_OPENMP " -fopenmp")
else()
  set(XGRAD_PC_OPENMP "")
endif()
# ... and one built with MPI, Open MPI's library (ompi-c.pc names it for pkg-config).
if(XGRAD_WITH_MPI)
  set(XGRAD_PC_MPI " ompi-c")
else()
  set(XGRAD_PC_MPI "")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/xgrad.pc.in ${PROJECT_BINARY_DIR}/xgrad.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/xgrad.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
